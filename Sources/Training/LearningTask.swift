import Datasets
import Foundation
import Metrics
import NeuralNet
import Observe
import Support

/// What the network's outputs mean, decided once from the loss, the output width and the number of targets: which
/// targets are valid, which metrics a run reports (the one place that names them) and how `predict` writes outputs.
enum LearningTask: Equatable {
    /// One of `classes` classes per sample, from softmax over as many logits (cross-entropy).
    case classification(classes: Int)
    /// A 0/1 label per sample, from one logit (binary cross-entropy).
    case binaryClassification
    /// `labels` independent 0/1 labels per sample, one logit each (binary cross-entropy).
    case multiLabel(labels: Int)
    /// `targets` numeric targets per sample, one output each (mse, l1, huber).
    case regression(targets: Int)

    /// The task of `loss` on a network with `outputWidth` outputs and data with `targetCount` targets per row;
    /// a combination the loss cannot use is a UserError naming the config key.
    init(loss: Loss, outputWidth: Int, targetCount: Int = 1) throws {
        switch loss {
        case .crossEntropy:
            if outputWidth < 2 {
                throw UserError("model.layers: cross_entropy needs at least 2 output units, the last layer has \(outputWidth)")
            }
            if targetCount != 1 {
                throw UserError("data.targets: cross_entropy learns one class column, the data has \(targetCount) targets "
                    + "(for several 0/1 labels use binary_cross_entropy)")
            }
            self = .classification(classes: outputWidth)
        case .binaryCrossEntropy, .meanSquaredError, .meanAbsoluteError, .huber:
            if outputWidth != targetCount {
                let what = loss == .binaryCrossEntropy ? "one logit per 0/1 label" : "one output per target"
                throw UserError("model.layers: \(loss.rawValue) needs \(what): the last layer has \(outputWidth) unit"
                    + "\(outputWidth == 1 ? "" : "s") but the data has \(targetCount) target\(targetCount == 1 ? "" : "s")")
            }
            if loss == .binaryCrossEntropy {
                self = targetCount == 1 ? .binaryClassification : .multiLabel(labels: targetCount)
            } else {
                self = .regression(targets: targetCount)
            }
        }
    }

    /// Whether labels are classes, so accuracy is defined.
    var isClassification: Bool {
        if case .regression = self { return false }
        return true
    }

    /// Targets per row in the data.
    var targetCount: Int {
        switch self {
        case .classification, .binaryClassification: return 1
        case let .multiLabel(labels): return labels
        case let .regression(targets): return targets
        }
    }

    /// Checks `dataset` has the task's number of targets and every target is one the task can learn.
    func validateTargets(of dataset: Dataset) throws {
        guard dataset.targetCount == targetCount else {
            throw UserError("\(dataset.source): the data has \(dataset.targetCount) target\(dataset.targetCount == 1 ? "" : "s") "
                + "per row, the model predicts \(targetCount)")
        }
        switch self {
        case let .classification(classes): try dataset.validateClassLabels(classCount: classes)
        case .binaryClassification: try dataset.validateClassLabels(classCount: 2)
        case .multiLabel: try dataset.validateBinaryTargets()
        case .regression: break
        }
    }

    // MARK: - Metrics

    // Evaluation sums, one flat [Double] so ranks add theirs in one allreduce:
    // [0] Σ per-sample loss, [1] rows predicted right (every label, for multi-label), then
    // classification: per row of the evaluated data (at its own index, zero where another rank evaluates it) the
    // class probabilities and the class (c + 1 values), for the metrics over all rows (AUC, F1, ...);
    // multi-label: rows right per label (k values); regression: per target Σe², Σ|e|, Σt, Σt² (4k values, original units).

    /// Classes of a (binary) classification task, whose rows carry their probabilities in the sums.
    private var classCount: Int? {
        switch self {
        case let .classification(classes): return classes
        case .binaryClassification: return 2
        case .multiLabel, .regression: return nil
        }
    }

    /// How many sums `accumulate` keeps for data of `rows` rows.
    func sumCount(rows: Int) -> Int {
        switch self {
        case .classification, .binaryClassification: return 2 + rows * (classCount! + 1)
        case let .multiLabel(labels): return 2 + labels
        case let .regression(targets): return 2 + 4 * targets
        }
    }

    /// Adds a batch's loss totals and, per target, what the metrics need; `targets` are as `Dataset.gather` wrote
    /// them and are mapped back, with the outputs, to original units with the data's target mean and deviation.
    /// The batch holds rows `firstRow...` of the evaluated data.
    func accumulate(_ totals: Loss.BatchTotals, outputs: UnsafePointer<Float>, targets: UnsafePointer<Float>, count: Int,
                    firstRow: Int, into sums: inout [Double], targetMean: [Float], targetStandardDeviation: [Float]) {
        sums[0] += totals.lossSum
        sums[1] += Double(totals.correct)
        switch self {
        case let .classification(classes):
            for row in 0..<count {
                let base = 2 + (firstRow + row) * (classes + 1)
                var largest = -Double.infinity
                for j in 0..<classes { largest = max(largest, Double(outputs[row * classes + j])) }
                var total = 0.0
                for j in 0..<classes { total += exp(Double(outputs[row * classes + j]) - largest) }
                for j in 0..<classes { sums[base + j] = exp(Double(outputs[row * classes + j]) - largest) / total }
                sums[base + classes] = Double(targets[row])
            }
        case .binaryClassification:
            for row in 0..<count {
                let base = 2 + (firstRow + row) * 3
                let probability = 1 / (1 + exp(-Double(outputs[row])))
                (sums[base], sums[base + 1], sums[base + 2]) = (1 - probability, probability, Double(targets[row]))
            }
        case let .multiLabel(labels):
            for index in 0..<(count * labels) where (outputs[index] > 0) == (targets[index] >= 0.5) {
                sums[2 + index % labels] += 1
            }
        case let .regression(width):
            for index in 0..<(count * width) {
                let j = index % width
                let deviation = Double(targetStandardDeviation[j]), mean = Double(targetMean[j])
                let target = Double(targets[index]) * deviation + mean
                let error = Double(outputs[index]) * deviation + mean - target
                sums[2 + 4 * j] += error * error
                sums[3 + 4 * j] += abs(error)
                sums[4 + 4 * j] += target
                sums[5 + 4 * j] += target * target
            }
        }
    }

    /// The metrics of evaluation sums over `count` samples, named without prefix: `loss`, then `accuracy` (subset
    /// accuracy for multi-label), for classification `auc`, `f1` (macro), `balanced_accuracy` and `log_loss` (as
    /// scikit-learn computes them), `label_accuracy` for multi-label, `rmse`, `mae` and `r2` (each the mean over
    /// targets, in the targets' original units) for regression.
    func metrics(of sums: [Double], count: Int) -> MetricValues {
        let samples = Double(max(1, count))
        var values = MetricValues([("loss", sums[0] / samples)])
        switch self {
        case .classification, .binaryClassification:
            values.append("accuracy", sums[1] / samples)
            let classes = classCount!, width = classes + 1
            var probabilities = [Double](repeating: 0, count: count * classes), labels = [Int](repeating: 0, count: count)
            for row in 0..<count {
                for j in 0..<classes { probabilities[row * classes + j] = sums[2 + row * width + j] }
                labels[row] = min(max(0, Int(sums[2 + row * width + classes])), classes - 1)
            }
            let predictions = ClassPredictions(probabilities: probabilities, labels: labels, classCount: classes)
            values.append("auc", predictions.auc)
            values.append("f1", predictions.macroF1)
            values.append("balanced_accuracy", predictions.balancedAccuracy)
            values.append("log_loss", predictions.logLoss)
        case let .multiLabel(labels):
            values.append("accuracy", sums[1] / samples)
            values.append("label_accuracy", sums[2..<(2 + labels)].reduce(0, +) / (samples * Double(labels)))
        case let .regression(targets):
            let perTarget = (0..<targets).map { regressionMetrics(of: sums, target: $0, count: count) }
            for (index, name) in ["rmse", "mae", "r2"].enumerated() {
                values.append(name, perTarget.map { $0[index] }.reduce(0, +) / Double(targets))
            }
        }
        return values
    }

    /// Per-target metrics for `evaluate`: `rmse`, `mae`, `r2` per regression target, `accuracy` per multi-label
    /// label; empty for single-target classification.
    func perTargetMetrics(of sums: [Double], count: Int, names: [String]) -> [(name: String, metrics: MetricValues)] {
        switch self {
        case .classification, .binaryClassification:
            return []
        case .multiLabel:
            return names.indices.map { (names[$0], MetricValues([("accuracy", sums[2 + $0] / Double(max(1, count)))])) }
        case .regression:
            return names.indices.map { target in
                let values = regressionMetrics(of: sums, target: target, count: count)
                return (names[target], MetricValues([("rmse", values[0]), ("mae", values[1]), ("r2", values[2])]))
            }
        }
    }

    /// [rmse, mae, r2] of one target; r2 = 1 − SS_res / SS_tot around the evaluated data's own mean, and (as
    /// scikit-learn) 1 for a perfect fit of a constant target, 0 for an imperfect one.
    private func regressionMetrics(of sums: [Double], target: Int, count: Int) -> [Double] {
        let samples = Double(max(1, count))
        let squares = sums[2 + 4 * target], absolutes = sums[3 + 4 * target]
        let total = sums[4 + 4 * target], totalSquares = sums[5 + 4 * target]
        let spread = max(0, totalSquares - total * total / samples)
        let r2 = spread > 0 ? 1 - squares / spread : (squares == 0 ? 1 : 0)
        return [(squares / samples).squareRoot(), absolutes / samples, r2]
    }

    // MARK: - Predictions

    /// The column names `predict` writes for a model with `width` outputs: `output_i` and `predicted_class` for
    /// single-target classification, the targets' names for regression (values) and multi-label (probabilities).
    func predictionHeader(width: Int, targetNames: [String], normalization: NormalizationRecord,
                          probabilities: Bool = false) -> [String] {
        switch self {
        case .classification, .binaryClassification:
            let classes = self == .binaryClassification ? 2 : width
            return (0..<width).map { "output_\($0)" } + ["predicted_class"]
                + (probabilities ? (0..<classes).map { csvField("p_" + className($0, normalization, quoted: false)) } : [])
        case .multiLabel, .regression: return targetNames.map(csvField)
        }
    }

    /// The columns `predict` writes for one sample's outputs (regression values mapped back to original units).
    func predictionFields(_ outputs: UnsafePointer<Float>, width: Int, normalization: NormalizationRecord,
                          probabilities: Bool = false) -> [String] {
        switch self {
        case .classification:
            var best = 0
            for j in 1..<width where outputs[j] > outputs[best] { best = j }
            var fields = (0..<width).map { "\(outputs[$0])" } + [className(best, normalization)]
            if probabilities {
                let largest = (0..<width).map { Double(outputs[$0]) }.max()!
                let exponentials = (0..<width).map { Foundation.exp(Double(outputs[$0]) - largest) }
                let total = exponentials.reduce(0, +)
                fields += exponentials.map { "\(Float($0 / total))" }
            }
            return fields
        case .binaryClassification:
            let probability = Float(1 / (1 + Foundation.exp(-Double(outputs[0]))))
            return ["\(outputs[0])", className(outputs[0] > 0 ? 1 : 0, normalization)]
                + (probabilities ? ["\(1 - probability)", "\(probability)"] : [])
        case .multiLabel:
            return (0..<width).map { "\(Float(1 / (1 + Foundation.exp(-Double(outputs[$0])))))" }
        case .regression:
            guard normalization.targetMode == .standardize else { return (0..<width).map { "\(outputs[$0])" } }
            return (0..<width).map { "\(outputs[$0] * normalization.targetStandardDeviation[$0] + normalization.targetMean[$0])" }
        }
    }
}

/// Class `index` as `predict` writes it: its name when the class column held text, else the index.
private func className(_ index: Int, _ normalization: NormalizationRecord, quoted: Bool = true) -> String {
    guard let names = normalization.encoding?.classNames, index < names.count else { return String(index) }
    return quoted ? csvField(names[index]) : names[index]
}

/// `text` as one CSV field: quoted (with quotes doubled) when it holds a comma, quote or line break.
func csvField(_ text: String) -> String {
    guard text.contains(where: { $0 == "," || $0 == "\"" || $0.isNewline }) else { return text }
    return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}
