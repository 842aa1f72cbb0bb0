// Elementwise transcendental functions on any FloatVector (SIMD8<Float>: one AVX2 register; SIMD16: one AVX-512).
// Branch-free: every lane takes every path and selects, so cost does not depend on the data, and each lane's
// bits do not depend on the vector width. Accuracy against correctly rounded results is measured in
// KernelsTests (a few ulp).

/// Correctly rounded square root of each lane (one vsqrtps; the same bits as the scalar `squareRoot()`).
@inlinable @inline(__always)
public func vectorSquareRoot<V: FloatVector>(_ x: V) -> V {
    x.correctlyRoundedSquareRoot()
}

@usableFromInline @inline(__always)
func bits<V: FloatVector>(_ x: V) -> V.Bits {
    unsafeBitCast(x, to: V.Bits.self)
}

@usableFromInline @inline(__always)
func float<V: FloatVector>(_ bits: V.Bits) -> V {
    unsafeBitCast(bits, to: V.self)
}

@usableFromInline @inline(__always)
func float<V: FloatVector>(_ bits: V.Integers) -> V {
    unsafeBitCast(bits, to: V.self)
}

/// One Horner step: coefficient + p·x, fused.
@usableFromInline @inline(__always)
func horner<V: FloatVector>(_ p: V, _ x: V, _ coefficient: Float) -> V {
    V(repeating: coefficient).addingProduct(p, x)
}

@usableFromInline @inline(__always)
func absolute<V: FloatVector>(_ x: V) -> V {
    float(bits(x) & 0x7FFF_FFFF)
}

@usableFromInline @inline(__always)
func withSign<V: FloatVector>(_ magnitude: V, from x: V) -> V {
    float(bits(magnitude) | (bits(x) & 0x8000_0000))
}

/// Natural exponential of each lane (inf for x > ~88.72, 0 below ~-103.97, subnormal results in between).
@inlinable @inline(__always)
public func vectorExp<V: FloatVector>(_ x: V) -> V {
    // exp(x) = 2^n · exp(r), n = round(x / ln 2), r = x − n·ln 2 split in two parts (Cody–Waite).
    let low = V(repeating: -104), high = V(repeating: 89)
    let clamped = x.replacing(with: low, where: x.lanesLess(than: low)).replacing(with: high, where: high.lanesLess(than: x))
    // Adding 1.5·2^23 rounds to an integer held in the low mantissa bits.
    let magic = V(repeating: 12_582_912)
    let shifted = magic.addingProduct(clamped, V(repeating: 1.442_695_04))
    let n = shifted - magic
    var r = clamped.addingProduct(n, V(repeating: -0.693_359_375))
    r = r.addingProduct(n, V(repeating: 2.121_944_40e-4))
    // Cephes expf polynomial for exp(r) − 1 − r on |r| ≤ ln 2 / 2.
    var p = V(repeating: 1.987_569_150_0e-4)
    p = horner(p, r, 1.398_199_950_7e-3)
    p = horner(p, r, 8.333_451_907_3e-3)
    p = horner(p, r, 4.166_579_589_4e-2)
    p = horner(p, r, 1.666_666_545_9e-1)
    p = horner(p, r, 5.000_000_120_1e-1)
    let expR = r.addingProduct(p, r * r) + 1
    // 2^n as two factors 2^(n/2)·2^(n−n/2) so n ∈ [−150, 129] needs no special cases.
    let integer = unsafeBitCast(shifted, to: V.Integers.self) &- 0x4B40_0000
    let half = integer &>> 1
    let scale1: V = float((half &+ 127) &<< 23)
    let scale2: V = float((integer &- half &+ 127) &<< 23)
    var result = expR * scale1 * scale2
    result.replace(with: 0, where: x.lanesLess(than: low))
    result.replace(with: x, where: .!x.lanesEqual(to: x))
    return result
}

/// Natural logarithm of each lane (−inf at 0, NaN for negative or NaN input, inf at inf).
@inlinable @inline(__always)
public func vectorLog<V: FloatVector>(_ input: V) -> V {
    // log(x) = e·ln 2 + log(m), m ∈ [√½, √2); Cephes logf polynomial for log(1 + f).
    let subnormal = input.lanesLess(than: V(repeating: Float.leastNormalMagnitude))
    let x = input.replacing(with: input * 8_388_608, where: subnormal)
    let xBits = unsafeBitCast(x, to: V.Integers.self)
    var exponent = ((xBits &>> 23) & 0xFF) &- 126
    exponent.replace(with: exponent &- 23, where: subnormal)
    // Mantissa in [0.5, 1).
    var m: V = float((xBits & 0x007F_FFFF) | 0x3F00_0000)
    let low = m.lanesLess(than: V(repeating: 0.707_106_781_186_547_524))
    exponent.replace(with: exponent &- 1, where: low)
    m = m.replacing(with: m + m, where: low) - 1
    let e = V(converting: exponent)
    let z = m * m
    var p = V(repeating: 7.037_683_629_2e-2)
    p = horner(p, m, -1.151_461_031_0e-1)
    p = horner(p, m, 1.167_699_874_0e-1)
    p = horner(p, m, -1.242_014_084_6e-1)
    p = horner(p, m, 1.424_932_278_7e-1)
    p = horner(p, m, -1.666_805_766_5e-1)
    p = horner(p, m, 2.000_071_476_5e-1)
    p = horner(p, m, -2.499_999_399_3e-1)
    p = horner(p, m, 3.333_333_117_4e-1)
    var y = p * m * z
    y = y.addingProduct(e, V(repeating: -2.121_944_40e-4))
    y = y.addingProduct(z, V(repeating: -0.5))
    var result = (m + y).addingProduct(e, V(repeating: 0.693_359_375))
    result.replace(with: .infinity, where: input.lanesEqual(to: V(repeating: .infinity)))
    result.replace(with: -.infinity, where: input.lanesEqual(to: V()))
    result.replace(with: .nan, where: input.lanesLess(than: V()) .| .!input.lanesEqual(to: input))
    return result
}

/// Hyperbolic tangent of each lane.
@inlinable @inline(__always)
public func vectorTanh<V: FloatVector>(_ x: V) -> V {
    let magnitude = absolute(x)
    // |x| < 0.625: Cephes odd polynomial x + x·z·P(z), z = x².
    let z = x * x
    var p = V(repeating: -5.704_988_727_45e-3)
    p = horner(p, z, 2.063_908_879_54e-2)
    p = horner(p, z, -5.373_971_555_31e-2)
    p = horner(p, z, 1.333_144_220_36e-1)
    p = horner(p, z, -3.333_328_194_22e-1)
    let small = x.addingProduct(p * z, x)
    // Otherwise 1 − 2/(exp(2|x|) + 1), which saturates to 1 once exp overflows.
    let large = withSign(1 - 2 / (vectorExp(magnitude + magnitude) + 1), from: x)
    return large.replacing(with: small, where: magnitude.lanesLess(than: V(repeating: 0.625)))
}

/// Logistic sigmoid 1/(1 + exp(−x)) of each lane, stable for large |x|.
@inlinable @inline(__always)
public func vectorSigmoid<V: FloatVector>(_ x: V) -> V {
    // e = exp(−|x|) ≤ 1; σ(x) = 1/(1+e) for x ≥ 0 and e/(1+e) for x < 0, with no overflow.
    let e = vectorExp(-absolute(x))
    let numerator = V(repeating: 1).replacing(with: e, where: x.lanesLess(than: V()))
    return numerator / (1 + e)
}

/// Error function of each lane.
@inlinable @inline(__always)
public func vectorErf<V: FloatVector>(_ x: V) -> V {
    let magnitude = absolute(x)
    // |x| < 1: erf(x) = x·P(x²), least-squares fit (relative error 1.2e-9).
    let z = x * x
    var p = V(repeating: 7.853_990_246_076_137e-05)
    p = horner(p, z, -8.010_236_197_151_244e-04)
    p = horner(p, z, 5.188_333_336_263_895e-03)
    p = horner(p, z, -2.685_381_472_110_748_3e-02)
    p = horner(p, z, 1.128_358_542_919_159e-01)
    p = horner(p, z, -3.761_262_595_653_534e-01)
    p = horner(p, z, 1.128_379_106_521_606_4)
    let small = x * p
    // 1 ≤ |x| < 3.95: erf = 1 − exp(−x²)·Q(1/|x| − 0.6), Q fits erfc(x)·exp(x²) (relative error 1.4e-8).
    let t = 1 / magnitude - 0.6
    var q = V(repeating: 0.029_968_062_415_719_032)
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
    large.replace(with: 1, where: V(repeating: 3.95).lanesLessOrEqual(to: magnitude))
    return withSign(large, from: x).replacing(with: small, where: magnitude.lanesLess(than: V(repeating: 1)))
}

