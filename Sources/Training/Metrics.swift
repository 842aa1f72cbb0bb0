import Foundation
import DataParallel
import Observe
import Support

/// One line of metrics.jsonl: the state after an epoch.
struct EpochRecord: Encodable, Equatable {
    /// The epoch just finished, from 1.
    var epoch: Int
    /// Optimizer steps taken so far.
    var step: Int
    /// The schedule's rate at the epoch's last step.
    var learningRate: Double
    /// The mean training loss over the epoch's steps.
    var trainLoss: Double
    /// The task's metrics on the validation and test data, named as in metrics.jsonl (`val_loss`, `test_accuracy`, ...).
    var evaluation: MetricValues
    /// Training samples per second over the epoch, all ranks together.
    var samplesPerSecond: Double
    /// Seconds since start-up.
    var elapsedSeconds: Double
    /// Seconds since the first training step (evaluations included, start-up not), continued across a resume.
    var trainSeconds: Double
    /// The slowest rank over the epoch's last steps (several ranks only).
    var pace: RankPace.Figures?

    func encode(to encoder: Encoder) throws {
        let paceValues = pace.map { [("slowest_rank", Double($0.slowestRank)), ("slowest_rank_ratio", $0.ratio),
                                     ("wait_fraction", $0.waitFraction)] } ?? []
        try encoder.encodeObject(["epoch": epoch, "step": step, "lr": learningRate, "train_loss": trainLoss,
                                  "samples_per_second": samplesPerSecond, "elapsed_seconds": elapsedSeconds,
                                  "train_seconds": trainSeconds],
                                 flattened: MetricValues(evaluation.entries + paceValues))
    }
}

/// What a finished run reports (also written as summary.json).
struct RunSummary: Encodable, Equatable {
    /// Ranks in the job.
    var worldSize: Int
    /// Compute threads of each rank.
    var threadsPerRank: Int
    /// The SIMD kernel variant all ranks ran (`avx2` or `avx512`).
    var kernel: String
    /// Epochs trained (fewer than `epochsAllowed` when early stopping ended the run).
    var epochs: Int
    /// `training.epochs`.
    var epochsAllowed: Int
    /// Optimizer steps taken.
    var steps: Int
    /// The last epoch's mean training loss.
    var trainLoss: Double
    /// The task's metrics on the validation and test data after the last epoch (`val_loss`, `test_accuracy`, ...).
    var evaluation: MetricValues
    /// The best validation epoch and whether early stopping ended the run (nil without validation data).
    var bestEpoch: EarlyStoppingState?
    /// Training samples per second over the run (training only, all ranks together).
    var samplesPerSecond: Double
    /// Seconds from start-up to the end.
    var wallSeconds: Double
    /// SHA-256 of the final parameters' bytes: equal hashes, equal weights.
    var paramSHA256: String
    /// How often `launch/supervise` restarted this run (the lines of RUN_DIR/restarts.jsonl).
    var restarts: Int
    /// Each rank's peak resident and private (anonymous) memory.
    var memory: RankMemory

    /// The final test accuracy, for classification runs with test data.
    var testAccuracy: Double? { evaluation["test_accuracy"] }

    func encode(to encoder: Encoder) throws {
        try encoder.encodeObject(["world_size": worldSize, "threads_per_rank": threadsPerRank, "kernel": kernel, "epochs": epochs,
                                  "epochs_allowed": epochsAllowed, "steps": steps,
                                  "train_loss": trainLoss, "samples_per_second": samplesPerSecond,
                                  "wall_seconds": wallSeconds, "param_sha256": paramSHA256, "restarts": restarts,
                                  "peak_rss_bytes": memory.peakResidentBytes, "peak_private_bytes": memory.peakPrivateBytes],
                                 flattened: evaluation)
        if let best = bestEpoch, let epoch = best.bestEpoch {
            try encoder.encodeObject(["best_epoch": epoch, "best_metric": best.metric, "best_value": best.bestValue ?? .nan,
                                      "stopped_early": best.stopped])
        }
    }
}

/// metrics.jsonl (rank 0 only): one JSON object per epoch, the whole file replaced durably after each epoch.
final class MetricsLog {
    let path: String
    private var lines: [String] = []

    /// Starts metrics.jsonl empty for a new run or, when resuming, keeps the lines of epochs up to `keepingEpochs`
    /// (later epochs will be written again by the resumed run).
    init(path: String, resuming: Bool = false, keepingEpochs: Int = 0) throws {
        self.path = path
        if resuming, let text = try? String(contentsOfFile: path, encoding: .utf8) {
            lines = text.split(separator: "\n").map(String.init).filter { line in
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                      let epoch = object["epoch"] as? Int else { return false }
                return epoch <= keepingEpochs
            }
        }
        try save()
    }

    func append(_ record: EpochRecord) throws {
        lines.append(JSON.text(record))
        try save()
    }

    private func save() throws {
        try FileIO.writeAtomically(lines.map { $0 + "\n" }.joined(), to: path)
    }
}
