// The GEMM's register-blocked micro-kernel, written once for any vector width.
//
// A tile of C is `rows` rows × two vectors; its 2·rows accumulators stay in registers for the whole KC block,
// with two vectors of B and one broadcast value of A. Each element of C is one fma chain over p in order,
// whatever the tile shape, so every tile gives the same bits.

import CCPU

/// A register tile of the GEMM micro-kernel: C[rows × 2·lanes] held in 2·rows vectors of `Vector`.
protocol GemmTile {
    associatedtype Vector: FloatVector
    /// Blocks of six rows of C per tile (1 or 2).
    static var rowBlocks: Int { get }
    /// Whether the panels hold bf16 word pairs (GemmBFloat16.swift), always packed, rather than floats.
    static var packsBFloat16: Bool { get }
    /// `microKernel` for this tile: a requirement, so each conformance gets its own copy specialized in this file
    /// (also in builds without whole-module optimization, such as the tests').
    static func kernel(kc: Int, a: UnsafePointer<Float>, aStride: Int, b: UnsafePointer<Float>, bStride: Int,
                       c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, beta: Float)
    /// The same product, added in fixed point to (or, `replacing`, written over) `tile` [rows × columns] Int64.
    static func fixedPointKernel(kc: Int, a: UnsafePointer<Float>, aStride: Int, b: UnsafePointer<Float>, bStride: Int,
                                 tile: UnsafeMutablePointer<Int64>, replacing: Bool, check: inout FixedPointRangeCheck)
}

extension GemmTile {
    /// Rows of C per tile (one broadcast of A each).
    static var rows: Int { 6 * rowBlocks }
    /// Columns of C per tile (two vectors).
    static var columns: Int { 2 * Vector.scalarCount }
    static var packsBFloat16: Bool { false }

    @inline(never)
    static func kernel(kc: Int, a: UnsafePointer<Float>, aStride: Int, b: UnsafePointer<Float>, bStride: Int,
                       c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, beta: Float) {
        // A tile that adds into C (an accumulated weight gradient, a later K block) asks for C's lines now, so that
        // their misses overlap the K loop instead of stalling the store.
        if beta != 0 {
            for row in 0..<rows {
                plexus_prefetch_for_write(c + row &* ldc)
                plexus_prefetch_for_write(c + row &* ldc + columns - 1)
            }
        }
        let (top, bottom) = microKernelProduct(Self.self, kc: kc, a: a, aStride: aStride, b: b, bStride: bStride)
        top.store(to: c, ldc: ldc, alpha: alpha, beta: beta)
        if rowBlocks > 1 { bottom.store(to: c + 6 &* ldc, ldc: ldc, alpha: alpha, beta: beta) }
    }

    @inline(never)
    static func fixedPointKernel(kc: Int, a: UnsafePointer<Float>, aStride: Int, b: UnsafePointer<Float>, bStride: Int,
                                 tile: UnsafeMutablePointer<Int64>, replacing: Bool, check: inout FixedPointRangeCheck) {
        let (top, bottom) = microKernelProduct(Self.self, kc: kc, a: a, aStride: aStride, b: b, bStride: bStride)
        top.addFixedPoint(to: tile, stride: columns, replacing: replacing, check: &check)
        if rowBlocks > 1 { bottom.addFixedPoint(to: tile + 6 * columns, stride: columns, replacing: replacing, check: &check) }
    }
}

/// 6 × 16 of 8-lane vectors: 12 accumulators of AVX2's 16 registers (kernel variant avx2).
enum Tile6x16: GemmTile {
    typealias Vector = SIMD8<Float>
    static var rowBlocks: Int { 1 }
}

/// 12 × 32 of 16-lane vectors: 24 accumulators of AVX-512's 32 registers (kernel variant avx512).
enum Tile12x32: GemmTile {
    typealias Vector = SIMD16<Float>
    static var rowBlocks: Int { 2 }
}

/// Accumulators of six rows × two vectors of a tile. Plain stored properties, so a local one lives in registers.
struct GemmRowBlock<V: FloatVector> {
    var r0 = (V(), V()), r1 = (V(), V()), r2 = (V(), V()), r3 = (V(), V()), r4 = (V(), V()), r5 = (V(), V())

    // r[i] += a[i] · (b0, b1) for the six rows i
    @inline(__always)
    mutating func accumulate(_ a: UnsafePointer<Float>, _ b0: V, _ b1: V) {
        @inline(__always)
        func row(_ r: inout (V, V), _ value: Float) {
            let broadcast = V(repeating: value)
            r.0 = r.0.addingProduct(broadcast, b0)
            r.1 = r.1.addingProduct(broadcast, b1)
        }
        row(&r0, a[0]); row(&r1, a[1]); row(&r2, a[2])
        row(&r3, a[3]); row(&r4, a[4]); row(&r5, a[5])
    }

    // C[i, ·] = alpha·r[i] (+ beta·C[i, ·]) for the six rows i
    @inline(__always)
    func store(to c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, beta: Float) {
        let lanes = V.scalarCount
        let alphaVector = V(repeating: alpha), betaVector = V(repeating: beta)
        @inline(__always)
        func row(_ r: (V, V), _ pointer: UnsafeMutablePointer<Float>) {
            var low = alphaVector * r.0, high = alphaVector * r.1
            if beta != 0 {
                // alpha·acc and beta·C are rounded separately (no fusion), matching the reference order.
                low += betaVector * V(loadingFrom: pointer)
                high += betaVector * V(loadingFrom: pointer + lanes)
            }
            low.store(to: pointer)
            high.store(to: pointer + lanes)
        }
        row(r0, c); row(r1, c + ldc); row(r2, c + 2 &* ldc)
        row(r3, c + 3 &* ldc); row(r4, c + 4 &* ldc); row(r5, c + 5 &* ldc)
    }

    // tile[i, ·] (=/+=) round(r[i] · 2^40) for the six rows i, straight from the registers
    @inline(__always)
    func addFixedPoint(to tile: UnsafeMutablePointer<Int64>, stride: Int, replacing: Bool, check: inout FixedPointRangeCheck) {
        @inline(__always)
        func row(_ r: (V, V), _ pointer: UnsafeMutablePointer<Int64>) {
            accumulateFixedPoint(r.0, into: pointer, replacing: replacing, check: &check)
            accumulateFixedPoint(r.1, into: pointer + V.scalarCount, replacing: replacing, check: &check)
        }
        row(r0, tile); row(r1, tile + stride); row(r2, tile + 2 &* stride)
        row(r3, tile + 3 &* stride); row(r4, tile + 4 &* stride); row(r5, tile + 5 &* stride)
    }
}

/// The largest tile of any variant, in floats (sizes the edge-tile scratch).
let gemmLargestTile = 12 * 32

/// Work that depends on the kernel variant's GEMM tile: `perform(with:)` is specialized for each tile.
protocol GemmTileJob {
    func perform<Tile: GemmTile>(with tile: Tile.Type)
}

extension KernelVariant {
    /// Runs `job` with this variant's GEMM tile.
    @inline(__always)
    func run<Job: GemmTileJob>(_ job: Job) {
        switch self {
        case .avx2: job.perform(with: Tile6x16.self)
        case .avx512: job.perform(with: Tile12x32.self)
        }
    }
}

// acc[rows × columns] = A[rows × kc] · B[kc × columns]
/// The micro-kernel's product for one tile, in registers (its kernels then store it: C = alpha·acc + beta·C, or
/// into fixed point).
///
/// A's `rows` values for depth p are a[p·aStride ..< p·aStride + rows]: aStride = rows for a packed panel, lda for a
/// transposed A read in place. B's `columns` values for depth p are b[p·bStride ..< p·bStride + columns]: bStride =
/// columns for a packed panel, ldb for a B read in place. The arithmetic is the same either way. With beta = 0, C
/// is not read.
@inline(__always)
func microKernelProduct<Tile: GemmTile>(
    _: Tile.Type, kc: Int, a: UnsafePointer<Float>, aStride: Int, b: UnsafePointer<Float>, bStride: Int
) -> (top: GemmRowBlock<Tile.Vector>, bottom: GemmRowBlock<Tile.Vector>) {
    typealias V = Tile.Vector
    let lanes = V.scalarCount
    // Specialized for each tile (in its `kernel`), rowBlocks is a constant: the second block's code disappears for
    // one-block tiles, and every accumulator (a plain struct field) is a register.
    var top = GemmRowBlock<V>(), bottom = GemmRowBlock<V>()
    var ap = a
    var bp = b
    for _ in 0..<kc {
        let b0 = V(loadingFrom: bp), b1 = V(loadingFrom: bp + lanes)
        top.accumulate(ap, b0, b1)
        if Tile.rowBlocks > 1 { bottom.accumulate(ap + 6, b0, b1) }
        ap += aStride
        bp += bStride
    }
    return (top, bottom)
}
