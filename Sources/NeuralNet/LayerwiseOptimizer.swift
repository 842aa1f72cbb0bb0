import Foundation
import Kernels

/// One layer's place in the flat parameter buffer: its weights, then its biases.
public struct ParameterLayer: Equatable, Sendable {
    public let weights: Range<Int>
    public let biases: Range<Int>

    /// A layer of `weights` and `biases`.
    public init(weights: Range<Int>, biases: Range<Int>) {
        (self.weights, self.biases) = (weights, biases)
    }
}

extension Network {
    /// Each embedding table (as weights without biases), then each layer's weights and biases in the flat buffers, for
    /// the optimizers that treat them by layer.
    public var parameterLayers: [ParameterLayer] {
        embeddings.map { ParameterLayer(weights: $0.offset..<$0.offset + $0.parameterCount, biases: 0..<0) } + layers.map { ParameterLayer(weights: $0.weightOffset..<$0.biasOffset, biases: $0.biasOffset..<$0.biasOffset + $0.outputWidth) }
    }
}

// LARS (You, Gitman, Ginsburg 2017, Algorithm 1), per layer l with global rate γ, weight decay β, trust coefficient η:
//   λ = η·‖w‖ / (‖∇w‖ + β·‖w‖);  v ← m·v + γ·λ·(∇w + β·w);  w ← w − v
// LAMB (You et al. 2019, Algorithm 2), per layer with weight decay λ:
//   m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;  r = (m/(1−β1ᵗ)) / (√(v/(1−β2ᵗ)) + ε)
//   x ← x − η·‖x‖/‖r + λ·x‖ · (r + λ·x)
// A ratio whose norms are zero is 1 (as the papers' reference implementations do). Biases are excluded from weight
// decay and from the trust ratio, as both papers' experiments do (the BERT LAMB excludes "bias" and LayerNorm):
// LARS steps them by momentum SGD at rate γ, LAMB by Adam's r at rate η.
extension Optimizer {
    /// Each layer's trust ratio from its norms, 1 when either is zero.
    static func trustRatio(numerator: Double, denominator: Double) -> Float {
        numerator > 0 && denominator > 0 ? Float(numerator / denominator) : 1
    }

    /// `step` for LARS and LAMB (stepCount already advanced): norms by `sumOfSquares`, updates a vector at a time.
    func layerwiseStep(parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>, learningRate lr: Float,
                       threads: Int) {
        let settings = self.settings, t = Double(stepCount)
        let correction1 = Float(1 - Foundation.pow(Double(settings.beta1), t))
        let correction2Root = Float((1 - Foundation.pow(Double(settings.beta2), t)).squareRoot())
        firstMoment.withUnsafeMutableBufferPointer { firstBuffer in
            secondMoment.withUnsafeMutableBufferPointer { secondBuffer in
                update.withUnsafeMutableBufferPointer { updateBuffer in
                    for layer in layers {
                        for (range, isWeight) in [(layer.weights, true), (layer.biases, false)] where !range.isEmpty {
                            let p = parameters + range.lowerBound, g = gradients + range.lowerBound, count = range.count
                            let decay = isWeight ? settings.weightDecay : 0
                            let first = firstBuffer.baseAddress.map { $0 + range.lowerBound }
                            if settings.kind == .lars {
                                var ratio: Float = 1
                                if isWeight {
                                    let weightNorm = sumOfSquares(p, count: count, threads: threads).squareRoot()
                                    let gradientNorm = sumOfSquares(g, count: count, threads: threads).squareRoot()
                                    ratio = Optimizer.trustRatio(numerator: Double(settings.trustCoefficient) * weightNorm,
                                                                 denominator: gradientNorm + Double(decay) * weightNorm)
                                }
                                forEachChunk(count: count, threads: threads,
                                             LARSChunk(p: p, g: g, buffer: first, rate: lr * ratio, decay: decay,
                                                       momentum: settings.momentum))
                                continue
                            }
                            let u = updateBuffer.baseAddress! + range.lowerBound
                            forEachChunk(count: count, threads: threads,
                                         LAMBUpdateChunk(p: p, g: g, m: first!, v: secondBuffer.baseAddress! + range.lowerBound,
                                                         u: u, beta1: settings.beta1, beta2: settings.beta2,
                                                         correction1: correction1, correction2Root: correction2Root,
                                                         epsilon: settings.epsilon, decay: decay))
                            let ratio = isWeight ? Optimizer.trustRatio(
                                numerator: sumOfSquares(p, count: count, threads: threads).squareRoot(),
                                denominator: sumOfSquares(u, count: count, threads: threads).squareRoot()) : 1
                            forEachChunk(count: count, threads: threads, SubtractScaledChunk(p: p, u: u, rate: lr * ratio))
                        }
                    }
                }
            }
        }
    }

    /// Naive scalar reference for LARS and LAMB: one element at a time, norms in one Double sum per layer.
    func layerwiseReferenceStep(parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>, learningRate lr: Float) {
        let settings = self.settings, t = Double(stepCount)
        func norm(_ values: (Int) -> Float, _ range: Range<Int>) -> Double {
            range.reduce(0.0) { $0 + Double(values($1)) * Double(values($1)) }.squareRoot()
        }
        for layer in layers {
            for (range, isWeight) in [(layer.weights, true), (layer.biases, false)] {
                let decay = isWeight ? settings.weightDecay : 0
                if settings.kind == .lars {
                    let weightNorm = norm({ parameters[$0] }, range), gradientNorm = norm({ gradients[$0] }, range)
                    let ratio = isWeight ? Optimizer.trustRatio(numerator: Double(settings.trustCoefficient) * weightNorm,
                                                                denominator: gradientNorm + Double(decay) * weightNorm) : 1
                    for i in range {
                        let step = lr * ratio * (gradients[i] + decay * parameters[i])
                        let velocity = settings.momentum == 0 ? step : settings.momentum * firstMoment[i] + step
                        if settings.momentum != 0 { firstMoment[i] = velocity }
                        parameters[i] -= velocity
                    }
                    continue
                }
                var direction = [Float](repeating: 0, count: range.count)
                for (k, i) in range.enumerated() {
                    let g = gradients[i]
                    firstMoment[i] = settings.beta1 * firstMoment[i] + (1 - settings.beta1) * g
                    secondMoment[i] = settings.beta2 * secondMoment[i] + (1 - settings.beta2) * g * g
                    let mHat = Double(firstMoment[i]) / (1 - Foundation.pow(Double(settings.beta1), t))
                    let vHat = Double(secondMoment[i]) / (1 - Foundation.pow(Double(settings.beta2), t))
                    direction[k] = Float(mHat / (vHat.squareRoot() + Double(settings.epsilon))) + decay * parameters[i]
                }
                let ratio = isWeight ? Optimizer.trustRatio(numerator: norm({ parameters[$0] }, range),
                                                            denominator: norm({ direction[$0 - range.lowerBound] }, range)) : 1
                for (k, i) in range.enumerated() { parameters[i] -= lr * ratio * direction[k] }
            }
        }
    }
}

// v = μ·v + rate·(g + decay·p) (no buffer when μ = 0: v is the step); p -= v
private struct LARSChunk: ChunkJob {
    let p: UnsafeMutablePointer<Float>, g: UnsafePointer<Float>, buffer: UnsafeMutablePointer<Float>?
    let rate: Float, decay: Float, momentum: Float

    func perform<V: FloatVector>(_ range: Range<Int>, as _: V.Type) {
        let rateVector = V(repeating: rate), decayVector = V(repeating: decay), momentumVector = V(repeating: momentum)
        forEachVector(in: range, as: V.self) { i, lanes in
            let pv: V = lanes.load(p + i), gv: V = lanes.load(g + i)
            var velocity = rateVector * (gv + decayVector * pv)
            if let buffer, momentum != 0 {
                velocity = momentumVector * (lanes.load(buffer + i) as V) + velocity
                lanes.store(velocity, buffer + i)
            }
            lanes.store(pv - velocity, p + i)
        }
    }
}

// m, v as Adam; u = (m / c1) / (√v / √c2 + ε) + decay·p
private struct LAMBUpdateChunk: ChunkJob {
    let p: UnsafeMutablePointer<Float>, g: UnsafePointer<Float>, m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>
    let u: UnsafeMutablePointer<Float>
    let beta1: Float, beta2: Float, correction1: Float, correction2Root: Float, epsilon: Float, decay: Float

    func perform<V: FloatVector>(_ range: Range<Int>, as _: V.Type) {
        let b1 = V(repeating: beta1), b2 = V(repeating: beta2)
        let oneMinusB1 = V(repeating: 1 - beta1), oneMinusB2 = V(repeating: 1 - beta2)
        let c1 = V(repeating: correction1), c2 = V(repeating: correction2Root), eps = V(repeating: epsilon)
        let decayVector = V(repeating: decay)
        forEachVector(in: range, as: V.self) { i, lanes in
            let gv: V = lanes.load(g + i), pv: V = lanes.load(p + i)
            let mv = b1 * (lanes.load(m + i) as V) + oneMinusB1 * gv
            let vv = b2 * (lanes.load(v + i) as V) + oneMinusB2 * gv * gv
            lanes.store(mv, m + i)
            lanes.store(vv, v + i)
            lanes.store(mv / c1 / (vectorSquareRoot(vv) / c2 + eps) + decayVector * pv, u + i)
        }
    }
}

// p -= rate·u
private struct SubtractScaledChunk: ChunkJob {
    let p: UnsafeMutablePointer<Float>, u: UnsafePointer<Float>, rate: Float

    func perform<V: FloatVector>(_ range: Range<Int>, as _: V.Type) {
        let rateVector = V(repeating: rate)
        forEachVector(in: range, as: V.self) { i, lanes in
            lanes.store((lanes.load(p + i) as V) - rateVector * (lanes.load(u + i) as V), p + i)
        }
    }
}
