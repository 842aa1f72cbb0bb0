import Config
import Foundation
import Kernels
import NeuralNet
import Support

/// How rank 0 shows progress: a live line, plain per-epoch lines, or chosen by whether stdout is a terminal.
public enum ProgressMode: String, CaseIterable {
    case auto, live, plain

    /// Whether to draw the live line. Under mpirun a rank's stdout is a pseudo-terminal even when mpirun's is a
    /// file, so launch/train decides from its own stdout and passes `live` or `plain`.
    var isLive: Bool {
        switch self {
        case .live: return true
        case .plain: return false
        case .auto: return isatty(STDOUT_FILENO) == 1
        }
    }
}

/// Rank 0's progress: a live line on a terminal, plain per-epoch lines otherwise (Slurm logs).
final class ProgressReporter {
    let enabled: Bool
    let interactive: Bool
    private var lastLiveLength = 0

    init(enabled: Bool, interactive: Bool) {
        self.enabled = enabled
        self.interactive = interactive
    }

    private func emit(_ text: String) { Diagnostics.progress(text) }

    func warn(_ message: String) {
        guard enabled else { return }
        clearLive()
        Diagnostics.warning(message)
    }

    func note(_ message: String) {
        guard enabled else { return }
        clearLive()
        Diagnostics.note(message)
    }

    func start(config: TrainingConfig, network: Network, worldSize: Int, threads: Int, kernel: String, trainCount: Int, validationCount: Int?,
               testCount: Int?, runDirectory: String) {
        guard enabled else { return }
        let shape = ([network.inputWidth] + network.layers.map(\.outputWidth)).map(String.init).joined(separator: "-")
        emit("plexus: \(worldSize) rank\(worldSize == 1 ? "" : "s") × \(threads) thread\(threads == 1 ? "" : "s") (\(kernel) kernel), "
            + "model \(shape) (\(network.parameterCount) parameters), \(trainCount) train"
            + (validationCount.map { " / \($0) validation" } ?? "") + (testCount.map { " / \($0) test" } ?? "") + " samples, batch \(config.training.batchSize), "
            + "\(config.optimizer.kind.rawValue) lr \(config.optimizer.learningRate), run dir \(runDirectory)\n")
    }

    func step(epoch: Int, epochs: Int, stepInEpoch: Int, stepsPerEpoch: Int, loss: Double, samples: Int, since: Date,
              every: Int) {
        guard enabled, interactive, stepInEpoch % every == 0 || stepInEpoch == stepsPerEpoch else { return }
        let seconds = Date().timeIntervalSince(since)
        let rate = Double(samples) / max(seconds, 1e-9)
        let remaining = Double(stepsPerEpoch - stepInEpoch) / Double(stepInEpoch) * seconds
            + Double(epochs - epoch - 1) * seconds * Double(stepsPerEpoch) / Double(stepInEpoch)
        let line = String(format: "epoch %d/%d  step %d/%d  loss %.4f  %.0f samples/s  ETA ", epoch + 1, epochs,
                          stepInEpoch, stepsPerEpoch, loss, rate) + formatDuration(remaining)
        emit("\r" + line + String(repeating: " ", count: max(0, lastLiveLength - line.count)))
        lastLiveLength = line.count
    }

    private func clearLive() {
        if lastLiveLength > 0 {
            emit("\r" + String(repeating: " ", count: lastLiveLength) + "\r")
            lastLiveLength = 0
        }
    }

    func epoch(_ record: EpochRecord, epochs: Int) {
        guard enabled else { return }
        clearLive()
        var line = String(format: "epoch %d/%d  step %d  lr %.3g  train_loss %.4f", record.epoch, epochs, record.step,
                          record.learningRate, record.trainLoss)
        for (name, value) in record.evaluation.entries { line += "  \(name) " + String(format: "%.4f", value) }
        line += String(format: "  %.0f samples/s  elapsed ", record.samplesPerSecond) + formatDuration(record.elapsedSeconds)
        emit(line + "\n")
    }

    func finish(_ summary: RunSummary, files: RunDirectory) {
        guard enabled else { return }
        emit(Self.finalLine(summary, files: files) + "\n")
    }

    /// The last line of a finished run: `plexus: done: N steps, ...; wrote RUN_DIR/final.safetensors`.
    static func finalLine(_ summary: RunSummary, files: RunDirectory) -> String {
        var line = "plexus: done: \(summary.steps) steps"
        if let accuracy = summary.testAccuracy { line += String(format: ", test_accuracy %.4f", accuracy) }
        if let r2 = summary.evaluation["test_r2"] { line += String(format: ", test_r2 %.4f", r2) }
        return line + String(format: ", %.0f samples/s, ", summary.samplesPerSecond) + formatDuration(summary.wallSeconds)
            + " wall; wrote " + files[.finalWeights]
            + (summary.bestEpoch?.bestEpoch.map { " and \(RunFile.bestWeights.rawValue) (epoch \($0))" } ?? "")
    }
}

/// "1m05s" / "12.3s".
func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "?" }
    if seconds < 60 { return String(format: "%.1fs", seconds) }
    let whole = Int(seconds.rounded())
    if whole < 3600 { return String(format: "%dm%02ds", whole / 60, whole % 60) }
    return String(format: "%dh%02dm", whole / 3600, (whole % 3600) / 60)
}
