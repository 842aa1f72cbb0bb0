import Distributed
import Foundation
import Kernels

/// The `plexus bench` subcommands as library calls; the executable only parses arguments.
public enum BenchCommands {
    /// `plexus bench gemm`: the table or JSON for the given thread counts (default: 1 and all CPUs) at `batch` rows per rank.
    public static func gemm(json: Bool, threads: String?, batch: Int = 128) throws -> String {
        guard batch >= 1 else { throw UserError("--batch must be at least 1, got \(batch)") }
        let available = availableCPUCount()
        let counts = try threads.map { text in
            try text.split(separator: ",").map { item -> Int in
                guard let count = Int(item.trimmingCharacters(in: .whitespaces)), count >= 1 else {
                    throw UserError("--threads: expected positive integers separated by commas, got '\(text)'")
                }
                return count
            }
        } ?? (available > 1 ? [1, available] : [1])
        let results = GemmBenchmark.measure(shapes: GemmShape.benchmarkShapes(batch: batch), threads: counts)
        return json ? GemmBenchmark.json(results) : GemmBenchmark.table(results)
    }

    /// `plexus bench step`: rank 0 prints the step split; returns the exit status.
    public static func step(configPath: String, overrides: [String], steps: Int, warmupSteps: Int, json: Bool) -> Int32 {
        guard steps >= 1, warmupSteps >= 0 else {
            reportError(UserError("--steps must be at least 1 and --warmup at least 0"), rank: 0, worldSize: 1)
            return 2
        }
        return withCommunicator { communicator in
            if let result = try StepBenchmark.run(configPath: configPath, overrides: overrides, steps: steps,
                                                  warmupSteps: warmupSteps, communicator: communicator) {
                print(json ? result.json : result.text)
            }
        }
    }

    /// `plexus bench allreduce`: rank 0 prints the sizes' times; returns the exit status.
    public static func allreduce(json: Bool) -> Int32 {
        withCommunicator { communicator in
            let results = try AllreduceBenchmark.measure(communicator: communicator)
            if communicator.rank == 0 {
                print(json ? AllreduceBenchmark.json(results, worldSize: communicator.size)
                    : AllreduceBenchmark.table(results, worldSize: communicator.size, kind: communicator.kind))
            }
        }
    }

    /// Runs `body` with this process's communicator; an error is reported and ends every rank.
    private static func withCommunicator(_ body: (Communicator) throws -> Void) -> Int32 {
        guard let communicator = startCommunicator() else { return 1 }
        do {
            try body(communicator)
        } catch {
            reportError(error, rank: communicator.rank, worldSize: communicator.size)
            let status: Int32 = isUserError(error) ? 2 : 1
            if communicator.size > 1 { communicator.abort(status: status) }
            return status
        }
        fflush(stdout)
        communicator.finalize()
        return 0
    }
}
