import Foundation
import Kernels

/// Training objective over the network's outputs; mean reduction, as PyTorch's losses.
public enum Loss: String, CaseIterable, Sendable {
    /// Softmax over the logits, integer class labels (nn.CrossEntropyLoss).
    case crossEntropy = "cross_entropy"
    /// Squared error against numeric targets, one per output, averaged over every output (nn.MSELoss).
    case meanSquaredError = "mse"
    /// Absolute error against numeric targets, averaged over every output (nn.L1Loss).
    case meanAbsoluteError = "l1"
    /// Squared error within `delta` of the target and linear beyond, averaged over every output (nn.HuberLoss).
    case huber
    /// Sigmoid of each logit against its own 0/1 target (one label or several), averaged (nn.BCEWithLogitsLoss).
    case binaryCrossEntropy = "binary_cross_entropy"

    /// Whether labels are classes (so accuracy is defined).
    public var isClassification: Bool { self == .crossEntropy || self == .binaryCrossEntropy }

    /// Targets per row for `outputWidth` outputs: one class index for cross-entropy, one per output otherwise.
    public func targetWidth(outputWidth: Int) -> Int { self == .crossEntropy ? 1 : outputWidth }

    /// Sums over a batch: per-sample losses and correct predictions.
    public struct BatchTotals: Equatable {
        public var lossSum: Double
        public var correct: Int
        public init(lossSum: Double = 0, correct: Int = 0) { self.lossSum = lossSum; self.correct = correct }
    }

    // outputs[batch×width], targets[batch × targetWidth(width)] → Σ per-sample loss (a sample's loss is the mean over
    // its outputs); gradient[batch×width] = gradientScale · ∂(Σ loss)/∂outputs
    /// Sums the per-sample loss of a batch and, if `gradient` is given, writes the scaled gradient of that sum.
    ///
    /// Passing `gradientScale = 1 / globalBatch` makes the gradient that of PyTorch's mean loss over the global
    /// batch, so summing the ranks' gradients (one allreduce) gives the exact mean whatever each rank's share.
    /// `huberDelta` is used by `huber` only.
    public func evaluate(outputs: UnsafePointer<Float>, targets: UnsafePointer<Float>, batch: Int, width: Int,
                         gradient: UnsafeMutablePointer<Float>?, gradientScale: Float, huberDelta: Float = 1) -> BatchTotals {
        var totals = BatchTotals()
        switch self {
        case .crossEntropy:
            for row in 0..<batch {
                let logits = outputs + row * width
                let label = Int(targets[row])
                var maximum = -Float.infinity
                var best = 0
                for j in 0..<width where logits[j] > maximum { maximum = logits[j]; best = j }
                if best == label { totals.correct += 1 }
                var sum = 0.0
                for j in 0..<width { sum += Double(Foundation.exp(logits[j] - maximum)) }
                let logSum = Foundation.log(sum) + Double(maximum)
                totals.lossSum += logSum - Double(logits[label])
                if let gradient {
                    let out = gradient + row * width
                    for j in 0..<width {
                        let probability = Float(Foundation.exp(Double(logits[j]) - logSum))
                        out[j] = gradientScale * (probability - (j == label ? 1 : 0))
                    }
                }
            }
        case .meanSquaredError:
            // Each sample contributes the mean of its `width` squared errors, so Σ/batch is the mean over all elements.
            for row in 0..<batch {
                let y = outputs + row * width
                var sample = 0.0
                for j in 0..<width {
                    let error = y[j] - targets[row * width + j]
                    sample += Double(error) * Double(error)
                    gradient?[row * width + j] = gradientScale * 2 * error / Float(width)
                }
                totals.lossSum += sample / Double(width)
            }
        case .meanAbsoluteError, .huber:
            totals.lossSum = robustRegressionLossSum(outputs: outputs, targets: targets, batch: batch, width: width,
                                                     gradient: gradient, gradientScale: gradientScale,
                                                     delta: self == .huber ? huberDelta : nil)
        case .binaryCrossEntropy:
            totals = binaryCrossEntropyTotals(outputs: outputs, targets: targets, batch: batch, width: width,
                                              gradient: gradient, gradientScale: gradientScale)
        }
        return totals
    }
}
