import Distributed
import Foundation
import Kernels

/// What `plexus bench step` measured (the step split is the mean over ranks; memory is the largest rank's).
public struct StepBenchmarkResult {
    public let worldSize: Int
    public let threadsPerRank: Int
    public let deterministic: Bool
    public let globalBatch: Int
    public let timings: StepTimings
    /// Seconds from process start (the kernel's start time) until the trainer was ready: library loading, MPI, data, network.
    public let setupSeconds: Double
    /// Seconds from process start until the first training step had finished.
    public let firstStepSeconds: Double
    /// Peak resident memory (VmHWM) of the largest rank, in bytes.
    public let peakResidentBytes: Int64

    /// Training samples (global) per second over the timed steps.
    public var samplesPerSecond: Double { Double(timings.samples) / max(timings.total, 1e-12) }

    /// The result as one JSON object (times per step in milliseconds).
    public var json: String {
        let steps = Double(max(1, timings.steps))
        func milliseconds(_ seconds: Double) -> String { String(format: "%.4f", seconds / steps * 1000) }
        return "{\"world_size\": \(worldSize), \"threads_per_rank\": \(threadsPerRank), \"deterministic\": \(deterministic), "
            + "\"global_batch\": \(globalBatch), \"steps\": \(timings.steps), "
            + "\"samples_per_second\": \(String(format: "%.1f", samplesPerSecond)), "
            + "\"step_ms\": \(milliseconds(timings.total)), \"data_ms\": \(milliseconds(timings.data)), "
            + "\"forward_ms\": \(milliseconds(timings.forward)), \"backward_ms\": \(milliseconds(timings.backward)), "
            + "\"wait_ms\": \(milliseconds(timings.wait)), \"allreduce_ms\": \(milliseconds(timings.allreduce)), \"optimizer_ms\": \(milliseconds(timings.optimizer)), "
            + "\"setup_seconds\": \(String(format: "%.3f", setupSeconds)), "
            + "\"first_step_seconds\": \(String(format: "%.3f", firstStepSeconds)), "
            + "\"peak_rss_mib\": \(String(format: "%.1f", Double(peakResidentBytes) / 1_048_576))}"
    }

    /// The result as readable lines.
    public var text: String {
        let steps = Double(max(1, timings.steps))
        var lines = [
            "world size \(worldSize) × \(threadsPerRank) threads, global batch \(globalBatch), deterministic \(deterministic), "
                + "\(timings.steps) timed steps",
            String(format: "%.0f samples/s, %.3f ms per step", samplesPerSecond, timings.total / steps * 1000),
        ]
        for (name, seconds) in [("data", timings.data), ("forward", timings.forward), ("backward", timings.backward),
                                ("wait", timings.wait), ("allreduce", timings.allreduce), ("optimizer", timings.optimizer)] {
            lines.append("  " + pad(name, 10) + String(format: "%8.3f ms  %5.1f %%", seconds / steps * 1000,
                                                       100 * seconds / max(timings.total, 1e-12)))
        }
        lines.append(String(format: "setup %.3f s after launch, first step done %.3f s after launch, peak RSS %.1f MiB per rank (max)",
                            setupSeconds, firstStepSeconds, Double(peakResidentBytes) / 1_048_576))
        return lines.joined(separator: "\n")
    }
}

/// `plexus bench step`: times the full training step of a config on every rank of the world.
public enum StepBenchmark {
    /// Loads `configPath` with `overrides`, runs one step, then `warmupSteps` + `steps` steps, and returns the split.
    ///
    /// Returns nil on ranks other than 0. Nothing is written to disk.
    public static func run(configPath: String, overrides: [String], steps: Int, warmupSteps: Int,
                           communicator: Communicator) throws -> StepBenchmarkResult? {
        var config: TrainingConfig?
        try collectively(communicator) { config = try TrainingConfig.load(path: configPath, overrides: overrides) }
        let trainer = try Trainer(config: config!, runDirectory: "/nonexistent-bench-run", communicator: communicator,
                                  createRunDirectory: false)
        let setup = processAgeSeconds()
        _ = try trainer.benchmark(steps: 1, warmupSteps: 0)
        let firstStep = processAgeSeconds()
        var timings = try trainer.benchmark(steps: steps, warmupSteps: warmupSteps)
        // The split is the mean over ranks: which rank waits for which changes from step to step.
        let sums = try communicator.allreduceSum([timings.data, timings.forward, timings.backward, timings.wait,
                                                  timings.allreduce, timings.optimizer])
        let ranks = Double(communicator.size)
        (timings.data, timings.forward, timings.backward) = (sums[0] / ranks, sums[1] / ranks, sums[2] / ranks)
        (timings.wait, timings.allreduce, timings.optimizer) = (sums[3] / ranks, sums[4] / ranks, sums[5] / ranks)
        let peak = try communicator.allreduceMax(peakResidentBytes())
        guard communicator.rank == 0 else { return nil }
        return StepBenchmarkResult(worldSize: communicator.size, threadsPerRank: trainer.threads,
                                   deterministic: config!.training.deterministic, globalBatch: config!.training.batchSize,
                                   timings: timings, setupSeconds: setup, firstStepSeconds: firstStep,
                                   peakResidentBytes: peak)
    }
}

/// Peak resident set size of this process (VmHWM in /proc/self/status), in bytes; 0 where unavailable.
public func peakResidentBytes() -> Int64 {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let kilobytes = line.split(separator: " ").compactMap { Int64($0) }.first ?? 0
        return kilobytes * 1024
    }
    return 0
}

/// Seconds since this process was started (Linux: /proc/self/stat start time against /proc/uptime; 10 ms resolution).
public func processAgeSeconds() -> Double {
    guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
          let uptimeText = try? String(contentsOfFile: "/proc/uptime", encoding: .utf8),
          let uptime = Double(uptimeText.split(separator: " ").first ?? ""),
          let close = stat.lastIndex(of: ")") else { return 0 }
    // Fields after the command name start at field 3 (state); the start time is field 22.
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    guard fields.count > 19, let ticks = Double(fields[19]) else { return 0 }
    let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
    return uptime - ticks / ticksPerSecond
}
