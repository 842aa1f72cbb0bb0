import Kernels

/// Which rows of which optimizer step a training forward pass computes. Dropout draws its masks from it, so a mask
/// depends on (seed, step, sample, layer, unit) alone — never on the rank or thread that computes the row — and
/// every ranks × threads layout, and a resumed run, drops the same units.
public struct TrainingPass: Equatable, Sendable {
    /// The run's seed.
    public var seed: UInt64
    /// The optimizer step (0-based) this pass belongs to.
    public var step: Int
    /// Position in the global batch of the pass's first row; the pass's rows are consecutive from there.
    public var firstSample: Int

    /// A pass of `step` whose first row is sample `firstSample` of the global batch.
    public init(seed: UInt64, step: Int, firstSample: Int) {
        self.seed = seed
        self.step = step
        self.firstSample = firstSample
    }
}

/// Inverted dropout, as `nn.Dropout(p)`: in training each output is kept with probability 1 − p and then scaled by
/// 1/(1 − p), so evaluation (which drops nothing) sees the same expected activations.
public enum Dropout {
    /// An element is dropped when the top 24 of its random bits are below this: p · 2²⁴. (24 bits, so the kernel
    /// compares exact integers as Floats, which vectorize; Swift's unsigned SIMD comparison does not.)
    @inline(__always)
    static func threshold(rate: Float) -> UInt32 { UInt32(Double(rate) * 16_777_216) }

    /// What a kept element is multiplied by: 1/(1 − p).
    @inline(__always)
    static func keptScale(rate: Float) -> Float { Float(1 / (1 - Double(rate))) }

    /// 64 random bits for one row of one layer in one step, from which each unit's bits derive.
    @inline(__always)
    static func rowKey(seed: UInt64, step: Int, sample: Int, layer: Int) -> UInt64 {
        var key = SplitMix64.mix(seed &+ 0x4452_4F50_4F55_5400) // "DROPOUT"
        key = SplitMix64.mix(key ^ UInt64(truncatingIfNeeded: step))
        return SplitMix64.mix(key ^ (UInt64(truncatingIfNeeded: layer) << 44 | UInt64(truncatingIfNeeded: sample)))
    }

    /// The 32 random bits of each of 8 units (`units`) in a row: two rounds of a 32-bit mix, keyed by the row key's
    /// halves, so a row's units are distinct inputs of a bijection and rows differ in both rounds. 32-bit lanes keep
    /// it a few vector instructions per 8 units.
    @inline(__always)
    static func unitBits(rowKey: UInt64, units: SIMD8<UInt32>) -> SIMD8<UInt32> {
        mix32(mix32(units ^ UInt32(truncatingIfNeeded: rowKey)) ^ UInt32(truncatingIfNeeded: rowKey >> 32))
    }

    /// Wellons' `lowbias32` integer hash, lane by lane (the kernel's form).
    @inline(__always)
    static func mix32(_ value: SIMD8<UInt32>) -> SIMD8<UInt32> {
        var x = value
        x ^= x &>> 16
        x &*= 0x7FEB_352D
        x ^= x &>> 15
        x &*= 0x846C_A68B
        return x ^ (x &>> 16)
    }

    /// Whether unit `unit` of sample `sample` (its position in the global batch) survives dropout at `rate` in
    /// layer `layer` of step `step`: the definition the kernels follow, one element at a time.
    public static func keeps(seed: UInt64, step: Int, sample: Int, layer: Int, unit: Int, rate: Float) -> Bool {
        // The same two rounds as `unitBits`, one scalar at a time.
        func lowbias32(_ value: UInt32) -> UInt32 {
            var x = value
            x = (x ^ (x >> 16)) &* 0x7FEB_352D
            x = (x ^ (x >> 15)) &* 0x846C_A68B
            return x ^ (x >> 16)
        }
        let key = rowKey(seed: seed, step: step, sample: sample, layer: layer)
        let bits = lowbias32(lowbias32(UInt32(truncatingIfNeeded: unit) ^ UInt32(truncatingIfNeeded: key))
                             ^ UInt32(truncatingIfNeeded: key >> 32))
        return bits >> 8 >= threshold(rate: rate)
    }
}

// mask[rows×width] = keep ? 1/(1−p) : 0 for rows pass.firstSample..<+rows of `layer`; output[rows×width] = input ⊙ mask
/// Dropout's forward pass: draws the mask of `rows` rows and writes the kept, rescaled inputs.
func dropoutForward(input: UnsafePointer<Float>, mask: UnsafeMutablePointer<Float>, output: UnsafeMutablePointer<Float>,
                    rows: Int, width: Int, rate: Float, layer: Int, pass: TrainingPass, threads: Int) {
    forEachChunk(count: rows, threads: threads, minimumChunk: max(1, minimumElementsPerThread / width),
                 DropoutMaskChunk(input: input, mask: mask, output: output, width: width,
                                  threshold: Float(Dropout.threshold(rate: rate)), scale: Dropout.keptScale(rate: rate),
                                  layer: layer, pass: pass))
}

// inputGradient[count] = outputGradient[count] ⊙ mask[count]
/// Dropout's backward pass: the gradient flows only through the kept elements, scaled as they were.
func dropoutBackward(outputGradient: UnsafePointer<Float>, mask: UnsafePointer<Float>,
                     inputGradient: UnsafeMutablePointer<Float>, count: Int, threads: Int) {
    forEachChunk(count: count, threads: threads, MaskChunk(values: outputGradient, mask: mask, output: inputGradient))
}

/// Draws the mask of a run of rows and applies it.
private struct DropoutMaskChunk: ChunkJob {
    let input: UnsafePointer<Float>
    let mask: UnsafeMutablePointer<Float>
    let output: UnsafeMutablePointer<Float>
    let width: Int
    /// `Dropout.threshold` as a Float (exact: below 2²⁴).
    let threshold: Float
    let scale: Float
    let layer: Int
    let pass: TrainingPass

    // The mask bits come 8 units at a time (32-bit lanes) whatever the variant's width: lane-wise, so the same bits.
    func perform<V: FloatVector>(_ range: Range<Int>, as _: V.Type) {
        let lanes = SIMD8<UInt32>(0, 1, 2, 3, 4, 5, 6, 7)
        let zero = SIMD8<Float>(repeating: 0)
        for row in range {
            let key = Dropout.rowKey(seed: pass.seed, step: pass.step, sample: pass.firstSample + row, layer: layer)
            let start = row * width
            var unit = 0
            while unit < width {
                let bits = Dropout.unitBits(rowKey: key, units: lanes &+ UInt32(truncatingIfNeeded: unit))
                let top = SIMD8<Float>(SIMD8<Int32>(truncatingIfNeeded: bits &>> 8))
                let factor = zero.replacing(with: scale, where: top .>= threshold)
                let count = min(8, width - unit)
                if count == 8 {
                    factor.store(to: mask + start + unit)
                    (SIMD8<Float>(loadingFrom: input + start + unit) * factor).store(to: output + start + unit)
                } else {
                    for lane in 0..<count {
                        mask[start + unit + lane] = factor[lane]
                        output[start + unit + lane] = input[start + unit + lane] * factor[lane]
                    }
                }
                unit += 8
            }
        }
    }
}

/// output = values ⊙ mask over one chunk.
private struct MaskChunk: ChunkJob {
    let values: UnsafePointer<Float>
    let mask: UnsafePointer<Float>
    let output: UnsafeMutablePointer<Float>

    func perform<V: FloatVector>(_ range: Range<Int>, as _: V.Type) {
        forEachVector(in: range, as: V.self) { i, lanes in
            let v: V = lanes.load(values + i), m: V = lanes.load(mask + i)
            lanes.store(v * m, output + i)
        }
    }
}
