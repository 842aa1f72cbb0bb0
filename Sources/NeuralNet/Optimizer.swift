import Foundation
import Kernels

/// Optimizer settings with PyTorch's meanings and defaults.
public struct OptimizerOptions: Equatable, Sendable {
    /// The update rule; AdamW is Adam with decoupled weight decay; LARS and LAMB scale each layer's update by a
    /// trust ratio (LayerwiseOptimizer.swift).
    public enum Kind: String, CaseIterable, Sendable {
        case sgd, adam, adamw, lars, lamb

        /// Whether the rule scales each layer's update by a ratio of norms over the whole layer.
        public var isLayerwise: Bool { self == .lars || self == .lamb }
        /// Whether the rule keeps Adam's two moments.
        var usesMoments: Bool { self == .adam || self == .adamw || self == .lamb }
    }

    public var kind: Kind
    public var learningRate: Float
    public var momentum: Float
    public var nesterov: Bool
    public var beta1: Float
    public var beta2: Float
    public var epsilon: Float
    public var weightDecay: Float
    /// LARS's trust coefficient η: a layer's rate is η·‖w‖ / (‖g‖ + weight_decay·‖w‖) times the learning rate.
    public var trustCoefficient: Float

    /// Settings with PyTorch's defaults for `kind` (the config's defaults too): learning rate 0.01 for SGD and
    /// 0.001 for Adam; AdamW's weight decay is 0.01, the others' 0. LARS and LAMB, which PyTorch lacks, take their
    /// papers' values: LARS η 0.001 (so a learning rate of 1), LAMB ε 1e-6 and weight decay 0.01.
    public init(kind: Kind, learningRate: Float? = nil, momentum: Float = 0, nesterov: Bool = false, beta1: Float = 0.9,
                beta2: Float = 0.999, epsilon: Float? = nil, weightDecay: Float? = nil, trustCoefficient: Float = 0.001) {
        self.kind = kind
        self.learningRate = learningRate ?? [.sgd: 0.01, .lars: 1][kind] ?? 1e-3
        self.momentum = momentum
        self.nesterov = nesterov
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon ?? (kind == .lamb ? 1e-6 : 1e-8)
        self.weightDecay = weightDecay ?? (kind == .adamw || kind == .lamb ? 0.01 : 0)
        self.trustCoefficient = trustCoefficient
    }

    /// Whether weight decay is decoupled from the gradient (AdamW) rather than added to it.
    public var decoupledWeightDecay: Bool { kind == .adamw }
}

/// Applies one update to a flat parameter buffer from its flat gradient buffer, keeping its own state.
public final class Optimizer {
    public let settings: OptimizerOptions
    public let parameterCount: Int
    /// Optimizer steps taken so far (Adam's bias correction uses it).
    public internal(set) var stepCount: Int = 0
    /// SGD momentum buffer or Adam's first moment.
    public internal(set) var firstMoment: [Float]
    /// Adam's second moment (empty for SGD).
    public internal(set) var secondMoment: [Float]
    /// The layers LARS and LAMB take their trust ratios over; their biases get neither the ratio nor weight decay.
    public let layers: [ParameterLayer]
    /// LARS's and LAMB's update before the trust ratio (scratch, not state).
    var update: [Float]

    /// An optimizer with zeroed state for `parameterCount` parameters laid out as `layers` (needed by LARS and
    /// LAMB; empty: one layer of weights).
    public init(settings: OptimizerOptions, parameterCount: Int, layers: [ParameterLayer] = []) {
        self.settings = settings
        self.parameterCount = parameterCount
        let kind = settings.kind
        let usesFirst = kind.usesMoments || settings.momentum != 0
        firstMoment = [Float](repeating: 0, count: usesFirst ? parameterCount : 0)
        secondMoment = [Float](repeating: 0, count: kind.usesMoments ? parameterCount : 0)
        self.layers = layers.isEmpty ? [ParameterLayer(weights: 0..<parameterCount, biases: parameterCount..<parameterCount)] : layers
        update = [Float](repeating: 0, count: kind.isLayerwise ? parameterCount : 0)
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

    // p[n] -= update(g[n]) — one pass over every weight and bias (or over `range` of them)
    /// Takes one step at `learningRate` (the schedule's rate for this step), updating only the parameters in `range`
    /// (and their state) when given: the update is element-wise, so ranks that each step a slice get the same bits.
    public func step(parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>, learningRate: Float,
                     threads: Int, range: Range<Int>? = nil) {
        step(parameters: parameters, gradients: GradientBuffer(UnsafeMutablePointer(mutating: gradients)),
             learningRate: learningRate, threads: threads, range: range)
    }

    /// `step` with the gradients read block by block from `source` (the element-wise rules) or whole (LARS, LAMB).
    public func step(parameters allParameters: UnsafeMutablePointer<Float>, gradients source: GradientSource,
                     learningRate: Float, threads: Int, range: Range<Int>? = nil) {
        let settings = self.settings
        let range = range ?? 0..<parameterCount
        let first = stepCount == 0
        stepCount += 1
        let lr = learningRate
        let decay = settings.weightDecay
        switch settings.kind {
        case .sgd:
            let momentum = settings.momentum
            if momentum == 0 {
                pass(over: range, of: source, threads: threads, SGDUpdate(p: allParameters, lr: lr, decay: decay))
                return
            }
            firstMoment.withUnsafeMutableBufferPointer { buffer in
                pass(over: range, of: source, threads: threads,
                     MomentumUpdate(p: allParameters, buffer: buffer.baseAddress!, lr: lr, decay: decay,
                                    momentum: momentum, nesterov: settings.nesterov, first: first))
            }
        case .lars, .lamb:
            precondition(range.count == parameterCount, "LARS and LAMB step whole layers")
            layerwiseStep(parameters: allParameters, gradients: source.wholeGradients(range), learningRate: lr, threads: threads)
        case .adam, .adamw:
            let t = Double(stepCount)
            let constants = AdamConstants(
                beta1: settings.beta1, beta2: settings.beta2, epsilon: settings.epsilon,
                stepSize: lr / Float(1 - Foundation.pow(Double(settings.beta1), t)),
                correction2Root: Float((1 - Foundation.pow(Double(settings.beta2), t)).squareRoot()),
                decay: decay, shrink: 1 - lr * decay)
            firstMoment.withUnsafeMutableBufferPointer { m in
                secondMoment.withUnsafeMutableBufferPointer { v in
                    pass(over: range, of: source, threads: threads,
                         AdamUpdate(p: allParameters, m: m.baseAddress!, v: v.baseAddress!, constants: constants,
                                    decoupled: settings.decoupledWeightDecay))
                }
            }
        }
    }

    /// One element-wise update of `range` from `source`, in parts on up to `threads` threads (each part at least
    /// `minimumElementsPerThread` parameters, as `forEachChunk` splits).
    private func pass<Update: GradientUpdate>(over range: Range<Int>, of source: GradientSource, threads: Int,
                                              _ update: Update) {
        let parts = max(1, min(threads, range.count / minimumElementsPerThread))
        source.beginPass(over: range, parts: parts)
        parallelFor(count: parts, threads: parts, SourcePart(source: source, range: range, parts: parts, update: update))
        source.endPass()
    }
}

/// Part `index` of a pass, for `parallelFor`.
private struct SourcePart<Update: GradientUpdate>: ParallelJob {
    let source: GradientSource, range: Range<Int>, parts: Int, update: Update

    func perform(_ index: Int) { source.forEachBlock(inPart: index, of: parts, of: range, update) }
}

/// A step's gradients as the optimizer reads them: from a buffer, or formed a block at a time just before the block's
/// update (a gradient held as low-rank factors), so that it never has to be written out whole and read back.
public protocol GradientSource {
    /// Before a pass over `range` in `parts` parts (each then run once, in any order, on any thread).
    func beginPass(over range: Range<Int>, parts: Int)
    /// Calls `update` once for each of consecutive blocks that together cover part `part` of `parts` of `range`
    /// (parameter indices; the parts cut as `partRange` cuts), with the block's gradients (from its first),
    /// clipping's scale already applied.
    func forEachBlock<Update: GradientUpdate>(inPart part: Int, of parts: Int, of range: Range<Int>, _ update: Update)
    /// After every part of the pass ran.
    func endPass()
    /// The gradients of `range` in one buffer indexed like the parameters, formed and scaled where they were not.
    func wholeGradients(_ range: Range<Int>) -> UnsafePointer<Float>
}

extension GradientSource {
    public func beginPass(over range: Range<Int>, parts: Int) {}
    public func endPass() {}
}

/// Part `part` of `parts` of `range`: near-equal, its boundaries at multiples of 16 from the start (as `forEachChunk`).
public func partRange(_ part: Int, of parts: Int, of range: Range<Int>) -> Range<Int> {
    let chunk = chunkRange(part, of: parts, total: range.count, granule: 16)
    return (range.lowerBound + chunk.lowerBound)..<(range.lowerBound + chunk.upperBound)
}

/// An element-wise optimizer update of one block of parameters from the block's gradients.
public protocol GradientUpdate {
    /// Updates parameters `block` (and their state) from `gradients[0..<block.count]`.
    func update(_ block: Range<Int>, gradients: UnsafePointer<Float>)
}

/// Gradients in a buffer indexed like the parameters, scaled in place by `scale` (clipping) part by part just before
/// their update.
public struct GradientBuffer: GradientSource {
    let gradients: UnsafeMutablePointer<Float>
    let scale: Float?

    /// The gradients at `gradients`, to be multiplied by `scale` when given.
    public init(_ gradients: UnsafeMutablePointer<Float>, scaledBy scale: Float? = nil) {
        (self.gradients, self.scale) = (gradients, scale)
    }

    public func forEachBlock<Update: GradientUpdate>(inPart part: Int, of parts: Int, of range: Range<Int>, _ update: Update) {
        let block = partRange(part, of: parts, of: range)
        if !block.isEmpty { self.update(block, update) }
    }

    public func wholeGradients(_ range: Range<Int>) -> UnsafePointer<Float> {
        if let scale { Kernels.scale(gradients + range.lowerBound, count: range.count, by: scale) }
        return UnsafePointer(gradients)
    }

    /// Updates `range` in one call, after scaling it.
    public func update<Update: GradientUpdate>(_ range: Range<Int>, _ update: Update) {
        if let scale { Kernels.scale(gradients + range.lowerBound, count: range.count, by: scale) }
        update.update(range, gradients: gradients + range.lowerBound)
    }
}

extension Optimizer {
    /// Naive scalar reference for `step` (one thread, one element at a time); `step` must give the same bits.
    public func referenceStep(parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>, learningRate lr: Float) {
        let first = stepCount == 0
        stepCount += 1
        let decay = settings.weightDecay
        switch settings.kind {
        case .sgd:
            let momentum = settings.momentum
            for i in 0..<parameterCount {
                let g = gradients[i] + decay * parameters[i]
                if momentum == 0 {
                    parameters[i] -= lr * g
                    continue
                }
                let b = first ? g : momentum * firstMoment[i] + g
                firstMoment[i] = b
                parameters[i] -= lr * (settings.nesterov ? g + momentum * b : b)
            }
        case .lars, .lamb:
            layerwiseReferenceStep(parameters: parameters, gradients: gradients, learningRate: lr)
        case .adam, .adamw:
            let beta1 = settings.beta1, beta2 = settings.beta2, epsilon = settings.epsilon
            let t = Double(stepCount)
            let correction1 = Float(1 - Foundation.pow(Double(beta1), t))
            let correction2Root = Float((1 - Foundation.pow(Double(beta2), t)).squareRoot())
            for i in 0..<parameterCount {
                var p = parameters[i]
                var g = gradients[i]
                if settings.decoupledWeightDecay { p *= 1 - lr * decay } else { g += decay * p }
                let mi = beta1 * firstMoment[i] + (1 - beta1) * g
                let vi = beta2 * secondMoment[i] + (1 - beta2) * g * g
                firstMoment[i] = mi
                secondMoment[i] = vi
                p -= lr / correction1 * mi / (vi.squareRoot() / correction2Root + epsilon)
                parameters[i] = p
            }
        }
    }
}

// The update loops below run a vector of the kernel variant's width at a time with exactly the scalar operation
// sequence (no fused multiply-adds), so every parameter gets the same bits as `referenceStep`, for any thread count
// and either variant.

/// Per-step scalars of Adam/AdamW.
struct AdamConstants {
    let beta1: Float, beta2: Float, epsilon: Float
    /// lr / (1 − β1^t).
    let stepSize: Float
    /// √(1 − β2^t).
    let correction2Root: Float
    let decay: Float
    /// 1 − lr·weight_decay (AdamW).
    let shrink: Float
}

// The three updates as block updates (no closure, so no allocation per step): each runs its chunk job over one
// block on the calling thread.
private struct SGDUpdate: GradientUpdate {
    let p: UnsafeMutablePointer<Float>, lr: Float, decay: Float

    func update(_ block: Range<Int>, gradients: UnsafePointer<Float>) {
        forEachChunk(count: block.count, threads: 1, SGDChunk(p: p + block.lowerBound, g: gradients, lr: lr, decay: decay))
    }
}

private struct MomentumUpdate: GradientUpdate {
    let p: UnsafeMutablePointer<Float>, buffer: UnsafeMutablePointer<Float>
    let lr: Float, decay: Float, momentum: Float, nesterov: Bool, first: Bool

    func update(_ block: Range<Int>, gradients: UnsafePointer<Float>) {
        forEachChunk(count: block.count, threads: 1,
                     MomentumChunk(p: p + block.lowerBound, g: gradients, buffer: buffer + block.lowerBound, lr: lr,
                                   decay: decay, momentum: momentum, nesterov: nesterov, first: first))
    }
}

private struct AdamUpdate: GradientUpdate {
    let p: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>
    let constants: AdamConstants, decoupled: Bool

    func update(_ block: Range<Int>, gradients: UnsafePointer<Float>) {
        let start = block.lowerBound
        forEachChunk(count: block.count, threads: 1,
                     AdamChunk(p: p + start, g: gradients, m: m + start, v: v + start, constants: constants, decoupled: decoupled))
    }
}

// p[i] -= lr·(g[i] + decay·p[i])
private struct SGDChunk: ChunkJob {
    let p: UnsafeMutablePointer<Float>, g: UnsafePointer<Float>, lr: Float, decay: Float

    func perform<V: FloatVector>(_ range: Range<Int>, as _: V.Type) {
        let lrVector = V(repeating: lr), decayVector = V(repeating: decay)
        forEachVector(in: range, as: V.self) { i, lanes in
            let pv: V = lanes.load(p + i), gv: V = lanes.load(g + i)
            lanes.store(pv - lrVector * (gv + decayVector * pv), p + i)
        }
    }
}

// b = first ? g' : μ·b + g' with g' = g + decay·p; p -= lr·(nesterov ? g' + μ·b : b)
private struct MomentumChunk: ChunkJob {
    let p: UnsafeMutablePointer<Float>, g: UnsafePointer<Float>, buffer: UnsafeMutablePointer<Float>
    let lr: Float, decay: Float, momentum: Float, nesterov: Bool, first: Bool

    func perform<V: FloatVector>(_ range: Range<Int>, as _: V.Type) {
        let lrVector = V(repeating: lr), decayVector = V(repeating: decay), momentumVector = V(repeating: momentum)
        forEachVector(in: range, as: V.self) { i, lanes in
            let pv: V = lanes.load(p + i), gradient: V = lanes.load(g + i)
            let gv = gradient + decayVector * pv
            // PyTorch: the first step sets the buffer to the gradient (dampening 0).
            let bv = first ? gv : momentumVector * (lanes.load(buffer + i) as V) + gv
            lanes.store(bv, buffer + i)
            lanes.store(pv - lrVector * (nesterov ? gv + momentumVector * bv : bv), p + i)
        }
    }
}

// m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g·g; p -= stepSize·m / (√v / √(1−β2^t) + ε)  (PyTorch's order)
private struct AdamChunk: ChunkJob {
    let p: UnsafeMutablePointer<Float>, g: UnsafePointer<Float>, m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>
    let constants: AdamConstants, decoupled: Bool

    func perform<V: FloatVector>(_ range: Range<Int>, as _: V.Type) {
        // Two calls with constant `decoupled` let each specialize its inner loop.
        if decoupled {
            adamUpdate(range, V.self, decoupled: true)
        } else {
            adamUpdate(range, V.self, decoupled: false)
        }
    }

    @inline(__always)
    private func adamUpdate<V: FloatVector>(_ range: Range<Int>, _: V.Type, decoupled: Bool) {
        let c = constants
        let beta1 = V(repeating: c.beta1), beta2 = V(repeating: c.beta2)
        let oneMinusBeta1 = V(repeating: 1 - c.beta1), oneMinusBeta2 = V(repeating: 1 - c.beta2)
        let stepSize = V(repeating: c.stepSize), correction2Root = V(repeating: c.correction2Root)
        let epsilon = V(repeating: c.epsilon), decay = V(repeating: c.decay), shrink = V(repeating: c.shrink)
        forEachVector(in: range, as: V.self) { i, lanes in
            var pv: V = lanes.load(p + i)
            var gv: V = lanes.load(g + i)
            if decoupled { pv *= shrink } else { gv += decay * pv }
            let mv = beta1 * (lanes.load(m + i) as V) + oneMinusBeta1 * gv
            let vv = beta2 * (lanes.load(v + i) as V) + oneMinusBeta2 * gv * gv
            lanes.store(mv, m + i)
            lanes.store(vv, v + i)
            pv -= stepSize * mv / (vectorSquareRoot(vv) / correction2Root + epsilon)
            lanes.store(pv, p + i)
        }
    }
}
