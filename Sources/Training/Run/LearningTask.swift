import Foundation
import NeuralNet

/// What the network's outputs mean, decided once from the loss and the output width: which labels are valid, which
/// metrics a run reports and how `predict` writes its outputs.
public enum LearningTask: Equatable {
    /// One of `classes` classes per sample, from softmax over as many logits (cross-entropy).
    case classification(classes: Int)
    /// A 0/1 label per sample, from one logit (binary cross-entropy).
    case binaryClassification
    /// A numeric target per sample (mean squared error).
    case regression

    /// The task of `loss` on a network with `outputWidth` outputs; a width the loss cannot use is a UserError.
    public init(loss: Loss, outputWidth: Int) throws {
        switch loss {
        case .crossEntropy:
            if outputWidth < 2 {
                throw UserError("model.layers: cross_entropy needs at least 2 output units, the last layer has \(outputWidth)")
            }
            self = .classification(classes: outputWidth)
        case .binaryCrossEntropy:
            if outputWidth != 1 {
                throw UserError("model.layers: binary_cross_entropy needs 1 output unit (a logit), the last layer has \(outputWidth)")
            }
            self = .binaryClassification
        case .meanSquaredError:
            if outputWidth != 1 {
                throw UserError("model.layers: mse compares one output with the label column, the last layer has \(outputWidth) units")
            }
            self = .regression
        }
    }

    /// Whether labels are classes, so accuracy is defined.
    public var isClassification: Bool { self != .regression }

    /// Checks every label of `dataset` is one the task can learn (a class index for classification).
    public func validateLabels(of dataset: Dataset) throws {
        switch self {
        case let .classification(classes): try dataset.validateClassLabels(classCount: classes)
        case .binaryClassification: try dataset.validateClassLabels(classCount: 2)
        case .regression: break
        }
    }

    /// The metrics of summed batch totals over `count` samples, named without prefix (`loss`, `accuracy`).
    public func metrics(of totals: Loss.BatchTotals, count: Int) -> MetricValues {
        let samples = Double(max(1, count))
        var values = MetricValues([("loss", totals.lossSum / samples)])
        if isClassification { values.append("accuracy", Double(totals.correct) / samples) }
        return values
    }

    /// The column names `predict` writes for a model with `width` outputs.
    func predictionHeader(width: Int) -> [String] {
        (0..<width).map { "output_\($0)" } + (isClassification ? ["predicted_class"] : [])
    }

    /// The columns `predict` writes for one sample's outputs.
    func predictionFields(_ outputs: UnsafePointer<Float>, width: Int) -> [String] {
        var fields = (0..<width).map { "\(outputs[$0])" }
        switch self {
        case .classification:
            var best = 0
            for j in 1..<width where outputs[j] > outputs[best] { best = j }
            fields.append("\(best)")
        case .binaryClassification: fields.append(outputs[0] > 0 ? "1" : "0")
        case .regression: break
        }
        return fields
    }
}

/// Named metric values in the order they are reported (`loss`, then `accuracy`, ...).
public struct MetricValues: Equatable {
    public private(set) var entries: [(name: String, value: Double)]

    /// Values in the given order.
    public init(_ entries: [(name: String, value: Double)] = []) { self.entries = entries }

    /// Adds one value at the end.
    public mutating func append(_ name: String, _ value: Double) { entries.append((name, value)) }

    /// The value named `name`, if present.
    public subscript(name: String) -> Double? { entries.first { $0.name == name }?.value }

    /// The same values with every name prefixed (`test_` + `loss` is the metrics.jsonl key `test_loss`).
    public func prefixed(_ prefix: String) -> MetricValues {
        MetricValues(entries.map { ("\(prefix)_\($0.name)", $0.value) })
    }

    public static func == (left: MetricValues, right: MetricValues) -> Bool {
        left.entries.map(\.name) == right.entries.map(\.name) && left.entries.map(\.value) == right.entries.map(\.value)
    }
}
