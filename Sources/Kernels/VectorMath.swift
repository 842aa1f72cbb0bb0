// Elementwise transcendental functions on SIMD8<Float> (one ymm register with AVX2).
// Branch-free: every lane takes every path and selects, so cost does not depend on the data.
// Accuracy against correctly rounded results is measured in KernelsTests (a few ulp).

#if arch(x86_64) && canImport(_Builtin_intrinsics)
import _Builtin_intrinsics.intel
#endif

/// Correctly rounded square root of each lane (one vsqrtps; the same bits as the scalar `squareRoot()`).
@inline(__always)
public func vectorSquareRoot(_ x: SIMD8<Float>) -> SIMD8<Float> {
    // SIMD8.squareRoot() compiles to eight scalar square roots; the intrinsic is one instruction.
    #if arch(x86_64) && canImport(_Builtin_intrinsics)
    return _mm256_sqrt_ps(x)
    #else
    return x.squareRoot()
    #endif
}

@inline(__always)
private func bits(_ x: SIMD8<Float>) -> SIMD8<UInt32> {
    unsafeBitCast(x, to: SIMD8<UInt32>.self)
}

@inline(__always)
private func float(_ bits: SIMD8<UInt32>) -> SIMD8<Float> {
    unsafeBitCast(bits, to: SIMD8<Float>.self)
}

@inline(__always)
private func float(_ bits: SIMD8<Int32>) -> SIMD8<Float> {
    unsafeBitCast(bits, to: SIMD8<Float>.self)
}

/// One Horner step: coefficient + p·x, fused.
@inline(__always)
private func horner(_ p: SIMD8<Float>, _ x: SIMD8<Float>, _ coefficient: Float) -> SIMD8<Float> {
    SIMD8(repeating: coefficient).addingProduct(p, x)
}

@inline(__always)
private func absolute(_ x: SIMD8<Float>) -> SIMD8<Float> {
    float(bits(x) & 0x7FFF_FFFF)
}

@inline(__always)
private func withSign(_ magnitude: SIMD8<Float>, from x: SIMD8<Float>) -> SIMD8<Float> {
    float(bits(magnitude) | (bits(x) & 0x8000_0000))
}

/// Natural exponential of each lane (inf for x > ~88.72, 0 below ~-103.97, subnormal results in between).
@inline(__always)
public func vectorExp(_ x: SIMD8<Float>) -> SIMD8<Float> {
    // exp(x) = 2^n · exp(r), n = round(x / ln 2), r = x − n·ln 2 split in two parts (Cody–Waite).
    let clamped = pointwiseMin(pointwiseMax(x, SIMD8(repeating: -104)), SIMD8(repeating: 89))
    // Adding 1.5·2^23 rounds to an integer held in the low mantissa bits.
    let magic = SIMD8<Float>(repeating: 12_582_912)
    let shifted = magic.addingProduct(clamped, SIMD8(repeating: 1.442_695_04))
    let n = shifted - magic
    var r = clamped.addingProduct(n, SIMD8(repeating: -0.693_359_375))
    r = r.addingProduct(n, SIMD8(repeating: 2.121_944_40e-4))
    // Cephes expf polynomial for exp(r) − 1 − r on |r| ≤ ln 2 / 2.
    var p = SIMD8<Float>(repeating: 1.987_569_150_0e-4)
    p = horner(p, r, 1.398_199_950_7e-3)
    p = horner(p, r, 8.333_451_907_3e-3)
    p = horner(p, r, 4.166_579_589_4e-2)
    p = horner(p, r, 1.666_666_545_9e-1)
    p = horner(p, r, 5.000_000_120_1e-1)
    let expR = r.addingProduct(p, r * r) + 1
    // 2^n as two factors 2^(n/2)·2^(n−n/2) so n ∈ [−150, 129] needs no special cases.
    let integer = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000
    let half = integer &>> 1
    let scale1 = float((half &+ 127) &<< 23)
    let scale2 = float((integer &- half &+ 127) &<< 23)
    var result = expR * scale1 * scale2
    result.replace(with: 0, where: x .< -104)
    result.replace(with: x, where: x .!= x)
    return result
}

/// Natural logarithm of each lane (−inf at 0, NaN for negative or NaN input, inf at inf).
@inline(__always)
public func vectorLog(_ input: SIMD8<Float>) -> SIMD8<Float> {
    // log(x) = e·ln 2 + log(m), m ∈ [√½, √2); Cephes logf polynomial for log(1 + f).
    let subnormal = input .< Float.leastNormalMagnitude
    let x = input.replacing(with: input * 8_388_608, where: subnormal)
    let xBits = unsafeBitCast(x, to: SIMD8<Int32>.self)
    var exponent = ((xBits &>> 23) & 0xFF) &- 126
    exponent.replace(with: exponent &- 23, where: subnormal)
    // Mantissa in [0.5, 1).
    var m = float((xBits & 0x007F_FFFF) | 0x3F00_0000)
    let low = m .< 0.707_106_781_186_547_524
    exponent.replace(with: exponent &- 1, where: low)
    m = m.replacing(with: m + m, where: low) - 1
    let e = SIMD8<Float>(exponent)
    let z = m * m
    var p = SIMD8<Float>(repeating: 7.037_683_629_2e-2)
    p = horner(p, m, -1.151_461_031_0e-1)
    p = horner(p, m, 1.167_699_874_0e-1)
    p = horner(p, m, -1.242_014_084_6e-1)
    p = horner(p, m, 1.424_932_278_7e-1)
    p = horner(p, m, -1.666_805_766_5e-1)
    p = horner(p, m, 2.000_071_476_5e-1)
    p = horner(p, m, -2.499_999_399_3e-1)
    p = horner(p, m, 3.333_333_117_4e-1)
    var y = p * m * z
    y = y.addingProduct(e, SIMD8(repeating: -2.121_944_40e-4))
    y = y.addingProduct(z, SIMD8(repeating: -0.5))
    var result = (m + y).addingProduct(e, SIMD8(repeating: 0.693_359_375))
    result.replace(with: .infinity, where: input .== .infinity)
    result.replace(with: -.infinity, where: input .== 0)
    result.replace(with: .nan, where: (input .< 0) .| (input .!= input))
    return result
}

/// Hyperbolic tangent of each lane.
@inline(__always)
public func vectorTanh(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let magnitude = absolute(x)
    // |x| < 0.625: Cephes odd polynomial x + x·z·P(z), z = x².
    let z = x * x
    var p = SIMD8<Float>(repeating: -5.704_988_727_45e-3)
    p = horner(p, z, 2.063_908_879_54e-2)
    p = horner(p, z, -5.373_971_555_31e-2)
    p = horner(p, z, 1.333_144_220_36e-1)
    p = horner(p, z, -3.333_328_194_22e-1)
    let small = x.addingProduct(p * z, x)
    // Otherwise 1 − 2/(exp(2|x|) + 1), which saturates to 1 once exp overflows.
    let large = withSign(1 - 2 / (vectorExp(magnitude + magnitude) + 1), from: x)
    return large.replacing(with: small, where: magnitude .< 0.625)
}

/// Logistic sigmoid 1/(1 + exp(−x)) of each lane, stable for large |x|.
@inline(__always)
public func vectorSigmoid(_ x: SIMD8<Float>) -> SIMD8<Float> {
    // e = exp(−|x|) ≤ 1; σ(x) = 1/(1+e) for x ≥ 0 and e/(1+e) for x < 0, with no overflow.
    let e = vectorExp(-absolute(x))
    let numerator = SIMD8<Float>(repeating: 1).replacing(with: e, where: x .< 0)
    return numerator / (1 + e)
}

/// Error function of each lane.
@inline(__always)
public func vectorErf(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let magnitude = absolute(x)
    // |x| < 1: erf(x) = x·P(x²), least-squares fit (relative error 1.2e-9).
    let z = x * x
    var p = SIMD8<Float>(repeating: 7.853_990_246_076_137e-05)
    p = horner(p, z, -8.010_236_197_151_244e-04)
    p = horner(p, z, 5.188_333_336_263_895e-03)
    p = horner(p, z, -2.685_381_472_110_748_3e-02)
    p = horner(p, z, 1.128_358_542_919_159e-01)
    p = horner(p, z, -3.761_262_595_653_534e-01)
    p = horner(p, z, 1.128_379_106_521_606_4)
    let small = x * p
    // 1 ≤ |x| < 3.95: erf = 1 − exp(−x²)·Q(1/|x| − 0.6), Q fits erfc(x)·exp(x²) (relative error 1.4e-8).
    let t = 1 / magnitude - 0.6
    var q = SIMD8<Float>(repeating: 0.029_968_062_415_719_032)
    q = horner(q, t, -0.013_639_278_709_888_458)
    q = horner(q, t, -0.026_131_654_158_234_596)
    q = horner(q, t, 0.049_380_674_958_229_065)
    q = horner(q, t, -0.053_861_916_065_216_064)
    q = horner(q, t, 0.029_547_214_508_056_64)
    q = horner(q, t, 0.041_128_467_768_430_71)
    q = horner(q, t, -0.175_580_933_690_071_1)
    q = horner(q, t, 0.390_984_028_577_804_57)
    q = horner(q, t, 0.296_287_477_016_449)
    // x² = high + low exactly; exp(−x²) ≈ exp(−high)·(1 − low).
    let square = magnitude * magnitude
    let squareLow = (-square).addingProduct(magnitude, magnitude)
    let gaussian = vectorExp(-square) * (1 - squareLow)
    var large = 1 - gaussian * q
    large.replace(with: 1, where: magnitude .>= 3.95)
    return withSign(large, from: x).replacing(with: small, where: magnitude .< 1)
}

// MARK: - Array helpers

/// Work per thread below which the array helpers stay on one thread (memory-bound, dispatch costs ~µs).
public let elementwiseParallelGrain = 1 << 16

/// The work of a chunked loop: `perform(range)` for disjoint ranges that together cover `0..<count`, on any thread.
public protocol ChunkJob {
    /// Does the elements in `range`.
    func perform(_ range: Range<Int>)
}

/// Runs `job.perform(range)` over `0..<count` split into near-equal contiguous chunks (boundaries at multiples
/// of 8, so SIMD8 loops split cleanly), in parallel only when each thread gets at least `minimumChunk` elements.
@inlinable
public func forEachChunk<Job: ChunkJob>(count: Int, threads: Int, minimumChunk: Int = elementwiseParallelGrain, _ job: Job) {
    let parts = max(1, min(threads, count / minimumChunk))
    if parts == 1 {
        job.perform(0..<count)
        return
    }
    parallelFor(count: parts, threads: parts, ChunkSplit(job: job, count: count, parts: parts))
}

/// Part `index` of `parts` of a chunked loop, for `parallelFor`.
@usableFromInline
struct ChunkSplit<Job: ChunkJob>: ParallelJob {
    @usableFromInline let job: Job
    @usableFromInline let count: Int
    @usableFromInline let parts: Int

    @inlinable init(job: Job, count: Int, parts: Int) {
        (self.job, self.count, self.parts) = (job, count, parts)
    }

    @inlinable func perform(_ part: Int) {
        let blocks = chunkRange(part, of: parts, total: (count + 7) / 8)
        job.perform(min(count, blocks.lowerBound * 8)..<min(count, blocks.upperBound * 8))
    }
}

/// x[i] *= factor for i in 0..<count.
public func scale(_ x: UnsafeMutablePointer<Float>, count: Int, by factor: Float, threads: Int = 1) {
    forEachChunk(count: count, threads: threads, ScaleChunk(x: x, factor: factor))
}

private struct ScaleChunk: ChunkJob {
    let x: UnsafeMutablePointer<Float>
    let factor: Float

    func perform(_ range: Range<Int>) {
        let f = SIMD8<Float>(repeating: factor)
        var i = range.lowerBound
        while i + 8 <= range.upperBound {
            UnsafeMutableRawPointer(x + i).storeBytes(
                of: UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self) * f, as: SIMD8<Float>.self)
            i += 8
        }
        while i < range.upperBound {
            x[i] *= factor
            i += 1
        }
    }
}

/// y[i] += a·x[i] for i in 0..<count (axpy; fused multiply-add in every lane and in the tail).
public func addProduct(_ x: UnsafePointer<Float>, scaledBy a: Float, to y: UnsafeMutablePointer<Float>,
                       count: Int, threads: Int = 1) {
    forEachChunk(count: count, threads: threads, AddProductChunk(x: x, a: a, y: y))
}

private struct AddProductChunk: ChunkJob {
    let x: UnsafePointer<Float>
    let a: Float
    let y: UnsafeMutablePointer<Float>

    func perform(_ range: Range<Int>) {
        let av = SIMD8<Float>(repeating: a)
        var i = range.lowerBound
        while i + 8 <= range.upperBound {
            let xv = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
            let yv = UnsafeRawPointer(y + i).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(y + i).storeBytes(of: yv.addingProduct(av, xv), as: SIMD8<Float>.self)
            i += 8
        }
        while i < range.upperBound {
            y[i] = y[i].addingProduct(a, x[i])
            i += 1
        }
    }
}

/// Σ x[i]² for i in 0..<count, accumulated in Double (same result for any thread count).
public func sumOfSquares(_ x: UnsafePointer<Float>, count: Int, threads: Int = 1) -> Double {
    // Fixed-size chunks summed in order keep the result independent of `threads`.
    let chunks = sumOfSquaresChunkCount(count)
    guard chunks > 1 else { return sumOfSquaresSerial(x, count: count) }
    return withUnsafeTemporaryAllocation(of: Double.self, capacity: chunks) { partials in
        sumOfSquaresPartials(x, count: count, chunks: 0..<chunks, into: partials.baseAddress!, threads: threads)
        return sumOfPartials(partials.baseAddress!, chunks: chunks)
    }
}

/// How many fixed-size chunks `sumOfSquares` splits `count` values into.
public func sumOfSquaresChunkCount(_ count: Int) -> Int {
    max(1, (count + elementwiseParallelGrain - 1) / elementwiseParallelGrain)
}

/// The partial sums of squares of `sumOfSquares`'s chunks `chunks` (partials[i] for chunk i), so that several
/// ranks can each compute some and `sumOfPartials` gives `sumOfSquares`'s bits.
public func sumOfSquaresPartials(_ x: UnsafePointer<Float>, count: Int, chunks: Range<Int>, into partials: UnsafeMutablePointer<Double>,
                                 threads: Int = 1) {
    let parts = max(1, min(threads, chunks.count))
    parallelFor(count: parts, threads: parts, SumOfSquaresPart(x: x, count: count, chunks: chunks, parts: parts, partials: partials))
}

/// The partials of all `chunks` added in chunk order: `sumOfSquares` from its pieces.
public func sumOfPartials(_ partials: UnsafePointer<Double>, chunks: Int) -> Double {
    var total = 0.0
    for index in 0..<chunks { total += partials[index] }
    return total
}

/// Part `part` of `sumOfSquaresPartials`: the partial sums of its share of the chunks.
private struct SumOfSquaresPart: ParallelJob {
    let x: UnsafePointer<Float>
    let count: Int
    let chunks: Range<Int>
    let parts: Int
    let partials: UnsafeMutablePointer<Double>

    func perform(_ part: Int) {
        let chunk = elementwiseParallelGrain
        for offset in chunkRange(part, of: parts, total: chunks.count) {
            let start = (chunks.lowerBound + offset) * chunk
            partials[chunks.lowerBound + offset] = sumOfSquaresSerial(x + start, count: min(chunk, count - start))
        }
    }
}

private func sumOfSquaresSerial(_ x: UnsafePointer<Float>, count: Int) -> Double {
    var low = SIMD4<Double>()
    var high = SIMD4<Double>()
    var i = 0
    while i + 8 <= count {
        let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
        let lowHalf = SIMD4<Double>(Double(v[0]), Double(v[1]), Double(v[2]), Double(v[3]))
        let highHalf = SIMD4<Double>(Double(v[4]), Double(v[5]), Double(v[6]), Double(v[7]))
        low = low.addingProduct(lowHalf, lowHalf)
        high = high.addingProduct(highHalf, highHalf)
        i += 8
    }
    var total = (low + high).sum()
    while i < count {
        let value = Double(x[i])
        total += value * value
        i += 1
    }
    return total
}

/// x[i] = value for i in 0..<count.
public func fill(_ x: UnsafeMutablePointer<Float>, count: Int, with value: Float, threads: Int = 1) {
    forEachChunk(count: count, threads: threads, FillChunk(x: x, value: value))
}

private struct FillChunk: ChunkJob {
    let x: UnsafeMutablePointer<Float>
    let value: Float

    func perform(_ range: Range<Int>) { (x + range.lowerBound).update(repeating: value, count: range.count) }
}
