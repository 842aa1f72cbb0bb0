import Config
import Foundation
import Observe
import Support

/// The best epoch so far by a validation metric (whose weights are `best.safetensors`) and, with
/// `training.early_stopping`, the epochs since it last improved and whether training stopped.
///
/// Part of the training position, so checkpoints carry it and a resumed run stops at the same epoch.
struct EarlyStoppingState: Codable, Equatable {
    /// The metric watched: `training.early_stopping.metric`, else `val_loss`.
    var metric: String
    /// Its best value so far and the epoch (1-based) that reached it; nil before the first validation.
    var bestValue: Double?
    var bestEpoch: Int?
    /// Epochs in a row, up to the last one, without an improvement of more than `min_delta`.
    var epochsWithoutImprovement = 0
    /// Early stopping ended training after the last epoch.
    var stopped = false

    enum CodingKeys: String, CodingKey {
        case metric, bestValue = "best_value", bestEpoch = "best_epoch"
        case epochsWithoutImprovement = "epochs_without_improvement", stopped
    }

    /// A fresh state watching `metric`.
    init(metric: String) { self.metric = metric }

    /// The state a run with `config` starts from: `saved` (from a checkpoint) if it watches the same metric, else a
    /// fresh one; nil without validation data.
    static func start(config: TrainingConfig, hasValidation: Bool, saved: EarlyStoppingState?) -> EarlyStoppingState? {
        guard hasValidation else { return nil }
        let metric = config.training.earlyStopping?.metric ?? "val_loss"
        return saved?.metric == metric ? saved : EarlyStoppingState(metric: metric)
    }

    /// Whether larger values of `metric` are better: scores (accuracy, R², F1, AUC, precision, recall) are; losses
    /// and errors (loss, rmse, mae, ...) are not.
    static func higherIsBetter(_ metric: String) -> Bool {
        let name = metric.hasPrefix("val_") ? String(metric.dropFirst(4)) : metric
        return ["accuracy", "r2", "f1", "auc", "precision", "recall"].contains { name == $0 || name.hasSuffix("_" + $0) }
    }

    /// Stops with a UserError naming `training.early_stopping.metric` when the task reports no such validation metric.
    static func checkMetric(of config: TrainingConfig, task: LearningTask) throws {
        guard let metric = config.training.earlyStopping?.metric else { return }
        let reported = task.metrics(of: [Double](repeating: 0, count: task.sumCount(rows: 1)), count: 1).prefixed("val").entries.map(\.name)
        if !reported.contains(metric) {
            throw UserError("training.early_stopping.metric: \(quotedForMessage(metric)) is not reported for this task "
                + "(validation reports: \(reported.joined(separator: ", ")))")
        }
    }

    /// Takes epoch `epoch`'s (1-based) validation metrics; true when it is the new best. With `settings`, marks the
    /// state stopped after `patience` epochs in a row without improving by more than `min_delta`.
    mutating func record(_ evaluation: MetricValues, epoch: Int, settings: TrainingConfig.EarlyStoppingSection?) -> Bool {
        guard let value = evaluation[metric] else { return false }
        let delta = settings?.minimumDelta ?? 0
        let improved: Bool
        if let best = bestValue {
            improved = EarlyStoppingState.higherIsBetter(metric) ? value > best + delta : value < best - delta
        } else {
            improved = !value.isNaN
        }
        if improved {
            bestValue = value
            bestEpoch = epoch
            epochsWithoutImprovement = 0
        } else {
            epochsWithoutImprovement += 1
            if let settings, epochsWithoutImprovement >= settings.patience { stopped = true }
        }
        return improved
    }
}
