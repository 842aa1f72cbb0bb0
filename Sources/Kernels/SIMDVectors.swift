// The vector types the kernels are written over, and the one way they load and store memory.
//
// Kernels are generic over `FloatVector` and specialized for SIMD8<Float> (the avx2 variant) and SIMD16<Float>
// (avx512); lanes never interact except in reductions, which fix their order independently of the width.

#if arch(x86_64) && canImport(_Builtin_intrinsics)
import _Builtin_intrinsics.intel
#endif

extension SIMD {
    /// The vector stored at `pointer` (any alignment).
    @inlinable @inline(__always)
    public init(loadingFrom pointer: UnsafePointer<Scalar>) {
        self = UnsafeRawPointer(pointer).loadUnaligned(as: Self.self)
    }

    /// The first `count` scalars at `pointer` (0 < count ≤ scalarCount), the other lanes zero.
    @inlinable @inline(__always)
    public init(loadingFrom pointer: UnsafePointer<Scalar>, count: Int) {
        self.init()
        for lane in 0..<count { self[lane] = pointer[lane] }
    }

    /// Stores the vector at `pointer` (any alignment).
    @inlinable @inline(__always)
    public func store(to pointer: UnsafeMutablePointer<Scalar>) {
        UnsafeMutableRawPointer(pointer).storeBytes(of: self, as: Self.self)
    }

    /// Stores the first `count` lanes at `pointer`.
    @inlinable @inline(__always)
    public func store(to pointer: UnsafeMutablePointer<Scalar>, count: Int) {
        for lane in 0..<count { pointer[lane] = self[lane] }
    }
}

/// A vector of Float lanes the kernels are written over, with the integer views their bit tricks need.
public protocol FloatVector: SIMD where Scalar == Float {
    /// The same lanes as unsigned 32-bit integers (for bit casts).
    associatedtype Bits: SIMD where Bits.Scalar == UInt32, Bits.MaskStorage == MaskStorage
    /// The same lanes as signed 32-bit integers (for bit casts and conversions).
    associatedtype Integers: SIMD where Integers.Scalar == Int32, Integers.MaskStorage == MaskStorage
    /// As many lanes of bytes.
    associatedtype Bytes: SIMD where Bytes.Scalar == UInt8

    /// Each lane converted to Float.
    init(converting integers: Integers)

    /// Each byte converted to Float.
    init(converting bytes: Bytes)

    /// The correctly rounded square root of each lane (the same bits as the scalar `squareRoot()`).
    func correctlyRoundedSquareRoot() -> Self

    /// The even-numbered and the odd-numbered lanes of `first` followed by `second`.
    static func unzip(_ first: Self, _ second: Self) -> (evens: Self, odds: Self)

    // Comparisons as requirements: generic code calling the SIMD operators (.<, .==) gets the stdlib's lane-by-lane
    // loop (a branch per lane); the concrete types' versions are one instruction each.

    /// The lanes where `self < other`.
    func lanesLess(than other: Self) -> SIMDMask<MaskStorage>
    /// The lanes where `self <= other`.
    func lanesLessOrEqual(to other: Self) -> SIMDMask<MaskStorage>
    /// The lanes where `self == other` (false for NaN).
    func lanesEqual(to other: Self) -> SIMDMask<MaskStorage>
}

extension SIMD8: FloatVector where Scalar == Float {
    public typealias Bits = SIMD8<UInt32>
    public typealias Integers = SIMD8<Int32>
    public typealias Bytes = SIMD8<UInt8>

    @inlinable @inline(__always)
    public init(converting integers: SIMD8<Int32>) { self.init(integers) }

    @inlinable @inline(__always)
    public init(converting bytes: SIMD8<UInt8>) { self.init(SIMD8<Int32>(truncatingIfNeeded: bytes)) }

    @inlinable @inline(__always)
    public func correctlyRoundedSquareRoot() -> SIMD8<Float> {
        // SIMD8.squareRoot() compiles to eight calls of sqrtf; the intrinsic is one instruction.
        #if arch(x86_64) && canImport(_Builtin_intrinsics)
        return _mm256_sqrt_ps(self)
        #else
        return squareRoot()
        #endif
    }

    @inlinable @inline(__always)
    public static func unzip(_ first: Self, _ second: Self) -> (evens: Self, odds: Self) {
        let both = SIMD16<Float>(lowHalf: first, highHalf: second)
        return (both.evenHalf, both.oddHalf)
    }

    @inlinable @inline(__always) public func lanesLess(than other: Self) -> SIMDMask<MaskStorage> { self .< other }
    @inlinable @inline(__always) public func lanesLessOrEqual(to other: Self) -> SIMDMask<MaskStorage> { self .<= other }
    @inlinable @inline(__always) public func lanesEqual(to other: Self) -> SIMDMask<MaskStorage> { self .== other }
}

extension SIMD16: FloatVector where Scalar == Float {
    public typealias Bits = SIMD16<UInt32>
    public typealias Integers = SIMD16<Int32>
    public typealias Bytes = SIMD16<UInt8>

    @inlinable @inline(__always)
    public init(converting integers: SIMD16<Int32>) { self.init(integers) }

    @inlinable @inline(__always)
    public init(converting bytes: SIMD16<UInt8>) { self.init(SIMD16<Int32>(truncatingIfNeeded: bytes)) }

    @inlinable @inline(__always)
    public func correctlyRoundedSquareRoot() -> SIMD16<Float> {
        #if canImport(CCPU.AVX512)
        return _mm512_sqrt_ps(self)
        #else
        return SIMD16(lowHalf: lowHalf.correctlyRoundedSquareRoot(), highHalf: highHalf.correctlyRoundedSquareRoot())
        #endif
    }

    @inlinable @inline(__always)
    public static func unzip(_ first: Self, _ second: Self) -> (evens: Self, odds: Self) {
        #if canImport(CCPU.AVX512)
        // One vpermt2ps each (SIMD32's evenHalf is not always inlined: then it is a call per use).
        let evens = unsafeBitCast(SIMD16<Int32>(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30), to: SIMD8<Int64>.self)
        let odds = unsafeBitCast(SIMD16<Int32>(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31), to: SIMD8<Int64>.self)
        return (_mm512_permutex2var_ps(first, evens, second), _mm512_permutex2var_ps(first, odds, second))
        #else
        let both = SIMD32<Float>(lowHalf: first, highHalf: second)
        return (both.evenHalf, both.oddHalf)
        #endif
    }

    @inlinable @inline(__always) public func lanesLess(than other: Self) -> SIMDMask<MaskStorage> { self .< other }
    @inlinable @inline(__always) public func lanesLessOrEqual(to other: Self) -> SIMDMask<MaskStorage> { self .<= other }
    @inlinable @inline(__always) public func lanesEqual(to other: Self) -> SIMDMask<MaskStorage> { self .== other }
}

/// Work written once for any vector width: `perform(_:as:)` is specialized for each kernel variant's vector type.
public protocol VectorJob {
    /// Does the work with vectors of type `Vector`.
    func perform<Vector: FloatVector>(as vector: Vector.Type)
}

extension KernelVariant {
    /// Runs `job` with this variant's vector type.
    @inlinable @inline(__always)
    public func run<Job: VectorJob>(_ job: Job) {
        switch self {
        case .avx2: job.perform(as: SIMD8<Float>.self)
        case .avx512: job.perform(as: SIMD16<Float>.self)
        }
    }
}
