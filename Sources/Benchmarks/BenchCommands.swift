/// Benchmarks: `plexus bench`: the GEMM, the training step and the allreduce, timed.

import Distributed
import Foundation
import Kernels
import Support
import Training

/// The `plexus bench` subcommands as library calls; the executable only parses arguments.
public enum BenchCommands {
    /// `plexus bench gemm`: the table or JSON for the given thread counts (default: 1 and all CPUs) at `batch` rows per
    /// rank, each product timed in runs of at least `runSeconds`.
    public static func gemm(json: Bool, threads: String?, batch: Int = 128, runSeconds: Double = 0.2,
                            precision precisionName: String = "fp32") throws -> String {
        guard batch >= 1 else { throw UserError("--batch must be at least 1, got \(batch)") }
        guard let precision = MatrixPrecision(rawValue: precisionName) else {
            throw UserError("--precision: expected fp32 or bf16, got '\(precisionName)'")
        }
        if let missing = precision.missingFeature {
            throw UserError("--precision \(precision.rawValue): this CPU (\(MatrixPrecision.cpuModel)) \(missing)")
        }
        guard runSeconds > 0, runSeconds.isFinite else { throw UserError("--run-seconds must be above 0, got \(runSeconds)") }
        _ = try agreeOnKernel(InProcessCommunicator())
        let available = availableCPUCount()
        let counts = try threads.map { text in
            try text.split(separator: ",").map { item -> Int in
                guard let count = Int(item.trimmingCharacters(in: .whitespaces)), count >= 1 else {
                    throw UserError("--threads: expected positive integers separated by commas, got '\(text)'")
                }
                return count
            }
        } ?? (available > 1 ? [1, available] : [1])
        let results = GemmBenchmark.measure(shapes: GemmShape.benchmarkShapes(batch: batch), threads: counts,
                                           minimumSeconds: runSeconds, precision: precision)
        return json ? GemmBenchmark.json(results) : GemmBenchmark.table(results)
    }

    /// `plexus bench step` on every rank of `communicator`: the step split on rank 0 (its output), nil elsewhere;
    /// `splitWait` times the wait for the slowest rank apart from the reduction (a barrier before it).
    public static func step(configPath: String, overrides: [String], steps: Int, warmupSteps: Int, json: Bool,
                            splitWait: Bool = false, communicator: Communicator) throws -> String? {
        guard steps >= 1, warmupSteps >= 0 else { throw AgreedUserError("--steps must be at least 1 and --warmup at least 0") }
        let result = try StepBenchmark.run(configPath: configPath, overrides: overrides, steps: steps,
                                           warmupSteps: warmupSteps, splitWait: splitWait, communicator: communicator)
        return result.map { json ? JSON.text($0) : $0.text }
    }

    /// `plexus bench allreduce` on every rank of `communicator`: the sizes' times (4 KiB to `maxBytes`, `calls` per
    /// size or as many as move about 1 GiB) on rank 0, nil elsewhere.
    public static func allreduce(json: Bool, maxBytes: Int = 64 << 20, calls: Int? = nil,
                                 communicator: Communicator) throws -> String? {
        let smallest = AllreduceBenchmark.sizes[0]
        guard maxBytes >= smallest, maxBytes <= 1 << 30, maxBytes & (maxBytes - 1) == 0 else {
            throw UserError("--max-bytes must be a power of 2 from \(smallest) to \(1 << 30), got \(maxBytes)")
        }
        if let calls, calls < 1 { throw UserError("--calls must be at least 1, got \(calls)") }
        let sizes = (12...maxBytes.trailingZeroBitCount).map { 1 << $0 }
        let results = try AllreduceBenchmark.measure(communicator: communicator, sizes: sizes, calls: calls)
        guard communicator.rank == 0 else { return nil }
        return json ? JSON.text(results) : AllreduceBenchmark.table(results, worldSize: communicator.size, kind: communicator.kind)
    }
}
