import Foundation

/// A loss with its options, as the config names it: `loss: mse`, or `loss: {name: huber, delta: 1.0}`.
public struct LossOptions: Equatable, Sendable {
    /// Which loss.
    public var kind: Loss
    /// Huber's boundary between the squared and the linear part (PyTorch's `delta`, default 1); unused by other losses.
    public var delta: Float

    /// Per-class weights of cross-entropy (`loss.class_weights`); nil: every class weighs 1.
    public var classWeights: ClassWeights?

    /// A loss with PyTorch's default options unless given.
    public init(kind: Loss, delta: Float = 1, classWeights: ClassWeights? = nil) {
        self.kind = kind
        self.delta = delta
        self.classWeights = classWeights
    }

    /// Whether labels are classes (so accuracy is defined).
    public var isClassification: Bool { kind.isClassification }

    /// `Loss.evaluate` with these options.
    public func evaluate(outputs: UnsafePointer<Float>, targets: UnsafePointer<Float>, batch: Int, width: Int,
                         gradient: UnsafeMutablePointer<Float>?, gradientScale: Float) -> Loss.BatchTotals {
        kind.evaluate(outputs: outputs, targets: targets, batch: batch, width: width, gradient: gradient,
                      gradientScale: gradientScale, huberDelta: delta)
    }
}

/// How cross-entropy weighs each class: PyTorch's `CrossEntropyLoss(weight=)`, a weighted mean over the rows.
public enum ClassWeights: Equatable, Sendable {
    /// rows / (classes × rows of the class), from the training rows (scikit-learn's `balanced`).
    case balanced
    /// One weight per class, in class order.
    case given([Float])
}

extension Loss {
    // outputs[batch×width], targets[batch×width] → Σ over rows of mean_j ℓ(y − t), where ℓ(e) = |e| (L1, delta nil) or
    // Huber's 0.5·e² for |e| < δ, δ·(|e| − 0.5·δ) beyond; gradient[batch×width] = gradientScale · ℓ'(e) / width with
    // ℓ'(e) = sign(e) (0 at 0, as torch.sign) or e inside δ, δ·sign(e) beyond.
    /// The summed per-sample L1 or Huber loss and, with `gradient`, its scaled gradient (PyTorch's L1Loss / HuberLoss).
    func robustRegressionLossSum(outputs: UnsafePointer<Float>, targets: UnsafePointer<Float>, batch: Int, width: Int,
                                 gradient: UnsafeMutablePointer<Float>?, gradientScale: Float, delta: Float?) -> Double {
        var lossSum = 0.0
        let perOutput = gradientScale / Float(width)
        for row in 0..<batch {
            var sample = 0.0
            for j in 0..<width {
                let index = row * width + j
                let error = outputs[index] - targets[index]
                let magnitude = abs(error)
                let sign: Float = error > 0 ? 1 : (error < 0 ? -1 : 0)
                let slope: Float
                if let delta, magnitude < delta {
                    sample += 0.5 * Double(error) * Double(error)
                    slope = error
                } else if let delta {
                    sample += Double(delta) * (Double(magnitude) - 0.5 * Double(delta))
                    slope = delta * sign
                } else {
                    sample += Double(magnitude)
                    slope = sign
                }
                gradient?[index] = perOutput * slope
            }
            lossSum += sample / Double(width)
        }
        return lossSum
    }

    // outputs[batch×width] logits z, targets[batch×width] in {0, 1} → Σ over rows of mean_j (max(z,0) − z·t + log(1 + e^−|z|)),
    // correct = rows whose every label is right (z > 0 ⇔ t ≥ 0.5); gradient = gradientScale · (σ(z) − t) / width.
    /// Binary cross-entropy with logits over one or several independent labels per row (nn.BCEWithLogitsLoss);
    /// `correct` counts rows with every label right (subset accuracy).
    func binaryCrossEntropyTotals(outputs: UnsafePointer<Float>, targets: UnsafePointer<Float>, batch: Int, width: Int,
                                  gradient: UnsafeMutablePointer<Float>?, gradientScale: Float) -> BatchTotals {
        var totals = BatchTotals()
        for row in 0..<batch {
            var sample = 0.0
            var allRight = true
            for j in 0..<width {
                let index = row * width + j
                let z = outputs[index], target = targets[index]
                // max(z,0) − z·t + log(1 + e^−|z|): stable for any z.
                let zd = Double(z), td = Double(target)
                sample += max(zd, 0) - zd * td + Foundation.log1p(Foundation.exp(-abs(zd)))
                if (z > 0) != (target >= 0.5) { allRight = false }
                if let gradient {
                    let probability = Float(1 / (1 + Foundation.exp(-zd)))
                    gradient[index] = gradientScale * (probability - target) / Float(width)
                }
            }
            totals.lossSum += sample / Double(width)
            if allRight { totals.correct += 1 }
        }
        return totals
    }
}
