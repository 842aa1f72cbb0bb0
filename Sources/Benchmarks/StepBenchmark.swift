import Config
import DataParallel
import Distributed
import Foundation
import Kernels
import Observe
import Support
import Training

/// What `plexus bench step` measured (the step split is the mean over ranks; memory is the largest rank's).
struct StepBenchmarkResult: Encodable {
    let worldSize: Int
    let threadsPerRank: Int
    /// The kernels all ranks ran: the SIMD variant's name, with "-bf16" for bf16 products.
    let kernel: String
    let deterministic: Bool
    let globalBatch: Int
    let timings: StepTimings
    /// Seconds from process start (the kernel's start time) until the trainer was ready: library loading, MPI, data, network.
    let setupSeconds: Double
    /// Seconds from process start until the first training step had finished.
    let firstStepSeconds: Double
    /// Peak resident memory (VmHWM) of the largest rank, in bytes.
    let peakResidentBytes: Int64
    /// Floating-point operations of the matrix products of one step over the global batch (2·m·n·k each: forward,
    /// input gradients but the first layer's, weight gradients).
    let productFlopsPerStep: Double
    /// The GEMM's rate on this machine (GFLOP/s per rank, mean over ranks measured at once), the limit the step is held
    /// against: a 1024×1024×1024 product at the rank's threads, best of 3 runs.
    let gemmPeakGigaflops: Double

    /// GFLOP/s of the step's matrix products per rank, over the whole timed step.
    var stepGigaflopsPerRank: Double {
        productFlopsPerStep * Double(timings.steps) / max(timings.total, 1e-12) / Double(worldSize) / 1e9
    }

    /// Model FLOP/s utilization: the step's product rate as a fraction of the GEMM peak.
    var modelFlopsUtilization: Double { stepGigaflopsPerRank / max(gemmPeakGigaflops, 1e-12) }

    /// Training samples (global) per second over the timed steps.
    var samplesPerSecond: Double { Double(timings.samples) / max(timings.total, 1e-12) }

    /// The parts of the step with their seconds, summed over the timed steps.
    var parts: [(name: String, seconds: Double)] {
        [("data", timings.data), ("forward", timings.forward), ("backward", timings.backward), ("wait", timings.wait),
         ("reduce", timings.reduce), ("optimizer", timings.optimizer)]
    }

    /// As JSON: times per step in milliseconds (`step_ms`, `data_ms`, ...), memory in MiB.
    func encode(to encoder: Encoder) throws {
        let steps = Double(max(1, timings.steps))
        let perStep = ([("step", timings.total)] + parts).map { (name: "\($0.name)_ms", value: $0.seconds / steps * 1000) }
        try encoder.encodeObject(["world_size": worldSize, "threads_per_rank": threadsPerRank, "kernel": kernel, "deterministic": deterministic,
                                  "global_batch": globalBatch, "steps": timings.steps, "samples_per_second": samplesPerSecond,
                                  "setup_seconds": setupSeconds, "first_step_seconds": firstStepSeconds,
                                  "peak_rss_mib": Double(peakResidentBytes) / 1_048_576,
                                  "step_product_gflop": productFlopsPerStep / 1e9, "step_gflops_per_rank": stepGigaflopsPerRank, "gemm_peak_gflops": gemmPeakGigaflops,
                                  "mfu": modelFlopsUtilization],
                                 flattened: MetricValues(perStep))
    }

    /// The result as readable lines.
    var text: String {
        let steps = Double(max(1, timings.steps))
        var lines = [
            "world size \(worldSize) × \(threadsPerRank) threads, \(kernel) kernel, global batch \(globalBatch), deterministic \(deterministic), "
                + "\(timings.steps) timed steps",
            String(format: "%.0f samples/s, %.3f ms per step", samplesPerSecond, timings.total / steps * 1000),
        ]
        for (name, seconds) in parts {
            lines.append("  " + pad(name, 10) + String(format: "%8.3f ms  %5.1f %%", seconds / steps * 1000,
                                                       100 * seconds / max(timings.total, 1e-12)))
        }
        lines.append(String(format: "%.1f GFLOP/s per rank in the step's matrix products, %.0f %% of the GEMM peak "
                            + "(%.1f GFLOP/s: 1024³ at %d thread(s))", stepGigaflopsPerRank, 100 * modelFlopsUtilization,
                            gemmPeakGigaflops, threadsPerRank))
        lines.append(String(format: "setup %.3f s after launch, first step done %.3f s after launch, peak RSS %.1f MiB per rank (max)",
                            setupSeconds, firstStepSeconds, Double(peakResidentBytes) / 1_048_576))
        return lines.joined(separator: "\n")
    }
}

/// `plexus bench step`: times the full training step of a config on every rank of the world.
enum StepBenchmark {
    /// Loads `configPath` with `overrides`, runs one step, then `warmupSteps` + `steps` steps, and returns the split.
    ///
    /// Returns nil on ranks other than 0. Nothing is written to disk.
    static func run(configPath: String, overrides: [String], steps: Int, warmupSteps: Int, splitWait: Bool = false,
                           communicator: Communicator) throws -> StepBenchmarkResult? {
        let config = try collectively(communicator) { try TrainingConfig.load(path: configPath, overrides: overrides) }
        let setup = try TrainingSetup(config: config, communicator: communicator)
        if communicator.rank == 0, let warning = setup.oversubscriptionWarning { Diagnostics.warning(warning) }
        // With splitWait, a barrier before each reduction splits the wait for the slowest rank from the transfer
        // (and adds its round trip to the step); without, the wait is part of the reduction, as in training.
        let observer = WaitSplittingTimer(communicator: communicator, splitting: splitWait)
        // With logging.timeline the step also reports to a timeline recorder (its cost is what this then measures).
        let timeline = config.logging.timeline
            ? TimelineRecorder(window: config.logging.timelineSteps, firstStep: 1, next: observer) : nil
        let reduction = try makeGradientReduction(config.reductionOptions, network: setup.network, communicator: communicator,
                                                  threads: setup.threads)
        let step = TrainingStep(network: setup.network, optimizer: setup.optimizer, schedule: setup.schedule, loss: config.loss,
                                rows: setup.train, reduction: reduction, communicator: communicator,
                                options: config.stepOptions(threads: setup.threads), observer: timeline ?? observer,
                                pace: try RankPace.gathering(communicator))
        let setupSeconds = processAgeSeconds()
        try run(step, of: setup, steps: 1, warmupSteps: 0, observer: observer)
        let firstStep = processAgeSeconds()
        try run(step, of: setup, steps: steps, warmupSteps: warmupSteps, observer: observer)
        var timings = observer.timer.timings
        // The split is the mean over ranks: which rank waits for which changes from step to step.
        let sums = try communicator.allreduceSum([timings.data, timings.forward, timings.backward, timings.wait,
                                                  timings.reduce, timings.optimizer])
        let ranks = Double(communicator.size)
        (timings.data, timings.forward, timings.backward) = (sums[0] / ranks, sums[1] / ranks, sums[2] / ranks)
        (timings.wait, timings.reduce, timings.optimizer) = (sums[3] / ranks, sums[4] / ranks, sums[5] / ranks)
        let peak = try communicator.allreduceMax(peakResidentBytes())
        // Every rank at once, as in the step: ranks sharing a node's memory bandwidth see it in their peak too.
        try communicator.barrier()
        // The peak of the precision the step's products ran in.
        let gemmPeak = GemmBenchmark.measure(GemmShape.peak, threads: setup.threads, runs: 3, minimumSeconds: 0.1,
                                             precision: config.training.precision).gigaflops
        let gemmPeakMean = try communicator.allreduceSum([gemmPeak])[0] / ranks
        let widths = [setup.network.inputWidth] + setup.network.layers.map(\.outputWidth)
        let flops = GemmShape.trainingShapes(widths: widths, batch: config.training.batchSize).map(\.flops).reduce(0, +)
        guard communicator.rank == 0 else { return nil }
        return StepBenchmarkResult(worldSize: communicator.size, threadsPerRank: setup.threads, kernel: setup.kernelName,
                                   deterministic: config.training.deterministic, globalBatch: config.training.batchSize,
                                   timings: timings, setupSeconds: setupSeconds, firstStepSeconds: firstStep,
                                   peakResidentBytes: peak, productFlopsPerStep: flops, gemmPeakGigaflops: gemmPeakMean)
    }

    /// Runs `warmupSteps` + `steps` steps from the first batch (epochs wrap around), timing only the last `steps`.
    static func run(_ step: TrainingStep, of setup: TrainingSetup, steps: Int, warmupSteps: Int,
                    observer: WaitSplittingTimer) throws {
        let stepsPerEpoch = setup.stepsPerEpoch
        var order = setup.epochOrder(0)
        for index in 0..<(warmupSteps + steps) {
            if index == warmupSteps { observer.timer.reset() }
            if index > 0 && index % stepsPerEpoch == 0 { order = setup.epochOrder(index / stepsPerEpoch) }
            if let divergence = try step.run(batchIndex: index % stepsPerEpoch, of: order, step: index).divergence {
                throw TrainingDiverged(step: divergence.step + 1, epoch: index / stepsPerEpoch + 1, loss: divergence.loss,
                                       fixedPointOverflow: divergence.fixedPointOverflow, lastCheckpoint: nil)
            }
        }
    }
}

/// `plexus bench step`'s observer: a timer that, when `splitting` at several ranks, waits at a barrier before the
/// reduction so the wait for the slowest rank is timed apart from the transfer.
final class WaitSplittingTimer: StepObserver {
    let timer = StepTimer()
    let communicator: Communicator
    let splitting: Bool

    init(communicator: Communicator, splitting: Bool) { (self.communicator, self.splitting) = (communicator, splitting) }

    func begin(_ phase: StepPhase) throws {
        if phase == .reduce && splitting && communicator.size > 1 {
            timer.begin(.wait)
            try communicator.barrier()
        }
        timer.begin(phase)
    }

    func endStep(samples: Int) { timer.endStep(samples: samples) }
}

/// Peak resident set size of this process (VmHWM in /proc/self/status), in bytes; 0 where unavailable.
func peakResidentBytes() -> Int64 {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let kilobytes = line.split(separator: " ").compactMap { Int64($0) }.first ?? 0
        return kilobytes * 1024
    }
    return 0
}

/// Seconds since this process was started (Linux: /proc/self/stat start time against /proc/uptime; 10 ms resolution).
func processAgeSeconds() -> Double {
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
