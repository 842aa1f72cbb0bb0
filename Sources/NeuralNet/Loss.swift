import Foundation
import Kernels

/// Training objective over the network's outputs; mean reduction, as PyTorch's losses.
public enum Loss: String, CaseIterable, Sendable {
    /// Softmax over the logits, integer class labels (nn.CrossEntropyLoss).
    case crossEntropy = "cross_entropy"
    /// Squared error against a numeric target, averaged over every output (nn.MSELoss).
    case meanSquaredError = "mse"
    /// Sigmoid of a single logit against a 0/1 target (nn.BCEWithLogitsLoss).
    case binaryCrossEntropy = "binary_cross_entropy"

    /// Whether labels are classes (so accuracy is defined).
    public var isClassification: Bool { self != .meanSquaredError }

    /// Sums over a batch: per-sample losses and correct predictions.
    public struct BatchTotals: Equatable {
        public var lossSum: Double
        public var correct: Int
        public init(lossSum: Double = 0, correct: Int = 0) { self.lossSum = lossSum; self.correct = correct }
    }

    // outputs[batch×width], labels[batch] → Σ per-sample loss; gradient[batch×width] = gradientScale · ∂(Σ loss)/∂outputs
    /// Sums the per-sample loss of a batch and, if `gradient` is given, writes the scaled gradient of that sum.
    ///
    /// Passing `gradientScale = 1 / globalBatch` makes the gradient that of PyTorch's mean loss over the global
    /// batch, so summing the ranks' gradients (one allreduce) gives the exact mean whatever each rank's share.
    public func evaluate(outputs: UnsafePointer<Float>, labels: UnsafePointer<Float>, batch: Int, width: Int,
                         gradient: UnsafeMutablePointer<Float>?, gradientScale: Float) -> BatchTotals {
        var totals = BatchTotals()
        switch self {
        case .crossEntropy:
            for row in 0..<batch {
                let logits = outputs + row * width
                let label = Int(labels[row])
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
                    let error = y[j] - labels[row]
                    sample += Double(error) * Double(error)
                    gradient?[row * width + j] = gradientScale * 2 * error / Float(width)
                }
                totals.lossSum += sample / Double(width)
            }
        case .binaryCrossEntropy:
            for row in 0..<batch {
                let z = outputs[row * width]
                let target = labels[row]
                // max(z,0) − z·t + log(1 + e^−|z|): stable for any z.
                let zd = Double(z), td = Double(target)
                totals.lossSum += max(zd, 0) - zd * td + Foundation.log1p(Foundation.exp(-abs(zd)))
                if (z > 0) == (target >= 0.5) { totals.correct += 1 }
                if let gradient {
                    let probability = Float(1 / (1 + Foundation.exp(-zd)))
                    gradient[row * width] = gradientScale * (probability - target)
                }
            }
        }
        return totals
    }
}
