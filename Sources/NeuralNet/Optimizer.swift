import Foundation
import Kernels

/// Optimizer settings with PyTorch's meanings and defaults.
public struct OptimizerSettings: Equatable, Sendable {
    /// The update rule; AdamW is Adam with decoupled weight decay.
    public enum Kind: String, CaseIterable, Sendable {
        case sgd, adam, adamw
    }

    public var kind: Kind
    public var learningRate: Float
    public var momentum: Float
    public var nesterov: Bool
    public var beta1: Float
    public var beta2: Float
    public var epsilon: Float
    public var weightDecay: Float

    /// Settings with PyTorch's defaults for `kind` (AdamW's weight decay is 0.01, the others' 0).
    public init(kind: Kind, learningRate: Float, momentum: Float = 0, nesterov: Bool = false, beta1: Float = 0.9,
                beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float? = nil) {
        self.kind = kind
        self.learningRate = learningRate
        self.momentum = momentum
        self.nesterov = nesterov
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay ?? (kind == .adamw ? 0.01 : 0)
    }

    /// Whether weight decay is decoupled from the gradient (AdamW) rather than added to it.
    public var decoupledWeightDecay: Bool { kind == .adamw }
}

/// Applies one update to a flat parameter buffer from its flat gradient buffer, keeping its own state.
public final class Optimizer {
    public let settings: OptimizerSettings
    public let parameterCount: Int
    /// Optimizer steps taken so far (Adam's bias correction uses it).
    public private(set) var stepCount: Int = 0
    /// SGD momentum buffer or Adam's first moment.
    public private(set) var firstMoment: [Float]
    /// Adam's second moment (empty for SGD).
    public private(set) var secondMoment: [Float]

    /// An optimizer with zeroed state for `parameterCount` parameters.
    public init(settings: OptimizerSettings, parameterCount: Int) {
        self.settings = settings
        self.parameterCount = parameterCount
        let usesFirst = settings.kind != .sgd || settings.momentum != 0
        firstMoment = [Float](repeating: 0, count: usesFirst ? parameterCount : 0)
        secondMoment = [Float](repeating: 0, count: settings.kind == .sgd ? 0 : parameterCount)
    }

    /// Restores saved state; false (and nothing changed) if the sizes do not fit this optimizer.
    public func restore(stepCount: Int, firstMoment: [Float], secondMoment: [Float]) -> Bool {
        guard firstMoment.count == self.firstMoment.count, secondMoment.count == self.secondMoment.count, stepCount >= 0 else {
            return false
        }
        self.stepCount = stepCount
        self.firstMoment = firstMoment
        self.secondMoment = secondMoment
        return true
    }

    /// Gives the state buffers to `body` in place (e.g. to broadcast them from rank 0).
    public func withMutableState<Result>(_ body: (UnsafeMutableBufferPointer<Float>, UnsafeMutableBufferPointer<Float>,
                                                  inout Int) throws -> Result) rethrows -> Result {
        try firstMoment.withUnsafeMutableBufferPointer { first in
            try secondMoment.withUnsafeMutableBufferPointer { second in try body(first, second, &stepCount) }
        }
    }

    // p[n] -= update(g[n]) — one pass over every weight and bias
    /// Takes one step at `learningRate` (the schedule's rate for this step).
    public func step(parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>, learningRate: Float,
                     threads: Int) {
        let settings = self.settings
        let count = parameterCount
        let first = stepCount == 0
        stepCount += 1
        let lr = learningRate
        let decay = settings.weightDecay
        switch settings.kind {
        case .sgd:
            let momentum = settings.momentum
            if momentum == 0 {
                forEachChunk(count: count, threads: threads) { range in
                    for i in range {
                        parameters[i] -= lr * (gradients[i] + decay * parameters[i])
                    }
                }
                return
            }
            firstMoment.withUnsafeMutableBufferPointer { bufferPointer in
                let buffer = bufferPointer.baseAddress!
                let nesterov = settings.nesterov
                forEachChunk(count: count, threads: threads) { range in
                    for i in range {
                        let g = gradients[i] + decay * parameters[i]
                        // PyTorch: the first step sets the buffer to the gradient (dampening 0).
                        let b = first ? g : momentum * buffer[i] + g
                        buffer[i] = b
                        parameters[i] -= lr * (nesterov ? g + momentum * b : b)
                    }
                }
            }
        case .adam, .adamw:
            let beta1 = settings.beta1, beta2 = settings.beta2, epsilon = settings.epsilon
            let t = Double(stepCount)
            let correction1 = Float(1 - Foundation.pow(Double(beta1), t))
            let correction2Root = Float((1 - Foundation.pow(Double(beta2), t)).squareRoot())
            let stepSize = lr / correction1
            let decoupled = settings.decoupledWeightDecay
            let shrink = 1 - lr * decay
            firstMoment.withUnsafeMutableBufferPointer { firstPointer in
                secondMoment.withUnsafeMutableBufferPointer { secondPointer in
                    let m = firstPointer.baseAddress!, v = secondPointer.baseAddress!
                    forEachChunk(count: count, threads: threads) { range in
                        for i in range {
                            var p = parameters[i]
                            var g = gradients[i]
                            if decoupled { p *= shrink } else { g += decay * p }
                            let mi = beta1 * m[i] + (1 - beta1) * g
                            let vi = beta2 * v[i] + (1 - beta2) * g * g
                            m[i] = mi
                            v[i] = vi
                            // PyTorch: denom = sqrt(v)/sqrt(1-β2^t) + eps; p -= lr/(1-β1^t) · m/denom
                            p -= stepSize * mi / (vi.squareRoot() / correction2Root + epsilon)
                            parameters[i] = p
                        }
                    }
                }
            }
        }
    }
}
