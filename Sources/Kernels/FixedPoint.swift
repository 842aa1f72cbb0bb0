// Exact, order-independent accumulation of Float values in 64-bit fixed point.
//
// Integer addition is associative, so sums of fixed-point values give the same bits whatever the
// order or grouping — across threads, ranks and MPI reduction trees. Values are scaled by
// 2^fixedPointFractionBits and rounded to nearest (ties to even) with the "magic number" trick:
// adding 1.5·2^52 to a Double of magnitude < 2^51 leaves the rounded integer in the low mantissa
// bits, which AVX2 can extract without a (missing) double→int64 vector conversion.

#if arch(x86_64) && canImport(_Builtin_intrinsics)
import _Builtin_intrinsics.intel
#endif

/// Fraction bits of the fixed-point format: a quantum of 2^-40 ≈ 9.1e-13.
public let fixedPointFractionBits = 40

/// Largest magnitude one accumulated value may have: 2^(51 − 40) = 2048.
public let fixedPointLimit: Double = 2048

private let fixedPointScale = Double(sign: .plus, exponent: fixedPointFractionBits, significand: 1)
private let magic = Double(sign: .plus, exponent: 52, significand: 1.5) // 1.5·2^52
private let magicBits = Int64(bitPattern: magic.bitPattern)

// accumulator[count] += round(x[count] · 2^40)   (or = when `replacing`)
/// Adds `x` to `accumulator` in fixed point (or, with `replacing`, overwrites it: saves zeroing it first);
/// returns false if any value is non-finite or ≥ `fixedPointLimit` in magnitude (the accumulator is then not
/// meaningful: callers stop, never continue silently).
public func accumulateFixedPoint(_ x: UnsafePointer<Float>, into accumulator: UnsafeMutablePointer<Int64>, count: Int,
                                 threads: Int = 1, replacing: Bool = false) -> Bool {
    let parts = max(1, min(threads, count / minimumElementsPerThread))
    // A stack buffer: this runs once per fixed group in every deterministic step, so no heap allocation.
    return withUnsafeTemporaryAllocation(of: Bool.self, capacity: parts) { failed in
        failed.initialize(repeating: false)
        parallelFor(count: parts, threads: parts, FixedPointPart(x: x, accumulator: accumulator, count: count, parts: parts,
                                                                 replacing: replacing, failed: failed.baseAddress!))
        return !failed.contains(true)
    }
}

/// Part `part` of `accumulateFixedPoint`, recording in `failed[part]` whether it met a value out of range.
private struct FixedPointPart: ParallelJob {
    let x: UnsafePointer<Float>
    let accumulator: UnsafeMutablePointer<Int64>
    let count: Int
    let parts: Int
    let replacing: Bool
    let failed: UnsafeMutablePointer<Bool>

    func perform(_ part: Int) {
        let chunk = chunkRange(part, of: parts, total: count, granule: 8), start = chunk.lowerBound, end = chunk.upperBound
        failed[part] = replacing
            ? !accumulateFixedPointSerial(x + start, into: accumulator + start, count: end - start, replacing: true)
            : !accumulateFixedPointSerial(x + start, into: accumulator + start, count: end - start, replacing: false)
    }
}

/// Whether every value a run of `accumulateFixedPointRow` calls met could be summed (kept as lanes, so checking
/// costs nothing per call; `isSummable` reduces them once).
struct FixedPointRangeCheck {
    var vectorLanes = SIMDMask<SIMD8<Int64>>(repeating: true)
    var floatLanes = SIMDMask<SIMD16<Int32>>(repeating: true)
    var scalars = true

    var isSummable: Bool { all(vectorLanes) && all(floatLanes) && scalars }
}

@inline(__always)
func accumulateFixedPointSerial(_ x: UnsafePointer<Float>, into accumulator: UnsafeMutablePointer<Int64>,
                                count: Int, replacing: Bool) -> Bool {
    var check = FixedPointRangeCheck()
    accumulateFixedPointRow(x, into: accumulator, count: count, replacing: replacing, check: &check)
    return check.isSummable
}

// accumulator[lanes] (=/+=) round(value · 2^40) for a register of any width
@inline(__always)
func accumulateFixedPoint<V: SIMD>(_ value: V, into accumulator: UnsafeMutablePointer<Int64>, replacing: Bool,
                                   check: inout FixedPointRangeCheck) where V.Scalar == Float {
    var copy = value
    withUnsafeBytes(of: &copy) { bytes in
        accumulateFixedPointRow(bytes.baseAddress!.assumingMemoryBound(to: Float.self), into: accumulator,
                                count: V.scalarCount, replacing: replacing, check: &check)
    }
}

// accumulator[count] (=/+=) round(x[count] · 2^40): eight lanes at a time (one AVX-512 register of Doubles, two of
// AVX2), the rest one by one; every lane is the same scalar arithmetic, so the width does not change the bits.
@inline(__always)
func accumulateFixedPointRow(_ x: UnsafePointer<Float>, into accumulator: UnsafeMutablePointer<Int64>, count: Int,
                             replacing: Bool, check: inout FixedPointRangeCheck) {
    let scale = SIMD8<Double>(repeating: fixedPointScale)
    let magicVector = SIMD8<Double>(repeating: magic)
    let magicInteger = SIMD8<Int64>(repeating: magicBits)
    let limit = SIMD8<Double>(repeating: fixedPointLimit)
    var i = 0
    #if canImport(CCPU.AVX512)
    // x·2^40 is exact in Float for |x| < 2^11 (a power-of-two scale), and vcvtps2qq rounds it to the nearest
    // integer, ties to even: the Double path's integer, with half the instructions.
    let floatScale = SIMD16<Float>(repeating: Float(fixedPointScale)), floatLimit = SIMD16<Float>(repeating: Float(fixedPointLimit))
    while i + 16 <= count {
        let v = SIMD16<Float>(loadingFrom: x + i)
        check.floatLanes .&= v.replacing(with: -v, where: v .< 0) .< floatLimit
        let scaled = v * floatScale
        let low = _mm512_cvtps_epi64(scaled.lowHalf), high = _mm512_cvtps_epi64(scaled.highHalf)
        if replacing {
            low.store(to: accumulator + i)
            high.store(to: accumulator + i + 8)
        } else {
            (SIMD8<Int64>(loadingFrom: accumulator + i) &+ low).store(to: accumulator + i)
            (SIMD8<Int64>(loadingFrom: accumulator + i + 8) &+ high).store(to: accumulator + i + 8)
        }
        i += 16
    }
    #endif
    while i + 8 <= count {
        let d = SIMD8<Double>(SIMD8<Float>(loadingFrom: x + i))
        // !(|d| < limit) also catches NaN.
        let magnitude = d.replacing(with: -d, where: d .< 0)
        check.vectorLanes .&= magnitude .< limit
        let rounded = d * scale + magicVector
        let integers = unsafeBitCast(rounded, to: SIMD8<Int64>.self) &- magicInteger
        let current = replacing ? SIMD8<Int64>() : SIMD8<Int64>(loadingFrom: accumulator + i)
        (current &+ integers).store(to: accumulator + i)
        i += 8
    }
    while i < count {
        let d = Double(x[i])
        if !(abs(d) < fixedPointLimit) { check.scalars = false }
        let rounded = d * fixedPointScale + magic
        accumulator[i] = (replacing ? 0 : accumulator[i]) &+ (Int64(bitPattern: rounded.bitPattern) &- magicBits)
        i += 1
    }
}

// x[count] = Float(accumulator[count] · 2^-40)
/// Converts fixed-point sums back to Float (rounded once).
public func fixedPointToFloat(_ accumulator: UnsafePointer<Int64>, into x: UnsafeMutablePointer<Float>, count: Int) {
    // AVX2 has no int64→double conversion; for |a| < 2^51 the magic number converts exactly:
    // the Double with bits (bits(1.5·2^52) + a) is 1.5·2^52 + a. Larger values take the scalar path.
    let inverse = 1 / fixedPointScale
    let inverseVector = SIMD8<Double>(repeating: inverse)
    let magicVector = SIMD8<Double>(repeating: magic)
    let magicInteger = SIMD8<Int64>(repeating: magicBits)
    let bound = SIMD8<Int64>(repeating: 1 << 51)
    var i = 0
    #if canImport(CCPU.AVX512)
    // vcvtqq2pd rounds like Double(a) for every a, so no range split is needed.
    while i + 8 <= count {
        SIMD8<Float>(_mm512_cvtepi64_pd(SIMD8<Int64>(loadingFrom: accumulator + i)) * inverseVector).store(to: x + i)
        i += 8
    }
    #endif
    while i + 8 <= count {
        let a = SIMD8<Int64>(loadingFrom: accumulator + i)
        if all((a .< bound) .& (a .> 0 &- bound)) {
            let d = (unsafeBitCast(a &+ magicInteger, to: SIMD8<Double>.self) - magicVector) * inverseVector
            SIMD8<Float>(d).store(to: x + i)
        } else {
            for j in i..<(i + 8) { x[j] = Float(Double(accumulator[j]) * inverse) }
        }
        i += 8
    }
    while i < count {
        x[i] = Float(Double(accumulator[i]) * inverse)
        i += 1
    }
}

/// Naive reference for `fixedPointToFloat`.
public func fixedPointToFloatReference(_ accumulator: UnsafePointer<Int64>, into x: UnsafeMutablePointer<Float>, count: Int) {
    for i in 0..<count { x[i] = Float(Double(accumulator[i]) / fixedPointScale) }
}

/// Reference: round(x · 2^40) computed with Foundation-free scalar rounding, for tests.
public func fixedPointReference(_ value: Float) -> Int64 {
    Int64((Double(value) * fixedPointScale).rounded(.toNearestOrEven))
}
