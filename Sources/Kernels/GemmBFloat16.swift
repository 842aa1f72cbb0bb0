// The bf16 GEMM: the fp32 GEMM's blocking and threading (Gemm.swift) over bf16 panels, with a vdpbf16ps micro-kernel.
//
// Packing rounds op(A) and op(B) to bf16 (nearest even, vcvtne2ps2bf16) and puts two depths in each 32-bit word:
// word (q, i) of a panel holds depths 2q (low half) and 2q+1 (high half) of row i of op(A) or column i of op(B),
// an odd last depth paired with zero. Per depth pair the 12×32 micro-kernel loads two vectors of B's words and
// broadcasts each row's word of A: acc = vdpbf16ps(acc, a, b) adds a[2q]·b[2q] + a[2q+1]·b[2q+1] (exact products,
// fp32 sums), 24 accumulators as in the avx512 tile. Each element of C is one chain over the depth pairs in order,
// the KC split (even) as in fp32, so its bits do not depend on the thread count, m, n or its place in a tile.

import CCPU

/// The number format the GEMM's products read: fp32, or bf16 copies of both operands summed in fp32.
public enum MatrixPrecision: String, CaseIterable, Sendable {
    case fp32
    case bf16

    /// Why this build and CPU cannot run products in this precision ("lacks AVX512_BF16"), or nil if they can.
    public var missingFeature: String? {
        guard self == .bf16 else { return nil }
        if !CPUFeatures.current.avx512BF16 { return "lacks AVX512_BF16" }
        #if canImport(CCPU.AVX512)
        return nil
        #else
        return "has AVX512_BF16 but this build holds no AVX-512 kernels (PLEXUS_TARGET_CPU)"
        #endif
    }

    /// The CPU's model name, for messages about what it lacks.
    public static var cpuModel: String { CPUFeatures.current.model }

    /// The name of the kernels a run uses: the variant's, with "-bf16" for bf16 products (e.g. avx512-bf16).
    public func kernelName(_ variant: KernelVariant) -> String {
        self == .fp32 ? variant.rawValue : variant.rawValue + "-bf16"
    }
}

#if canImport(CCPU.AVX512)
/// 12 × 32 of 16-lane fp32 accumulators over bf16 word panels (bf16 products; needs AVX512_BF16).
enum Tile12x32BF16: GemmTile {
    typealias Vector = SIMD16<Float>
    static var rowBlocks: Int { 2 }
    static var packsBFloat16: Bool { true }

    // C[12×32] = alpha·A[12×kc]·B[kc×32] (+ beta·C); a, b: packed word panels (strides unused: always packed)
    @inline(never)
    static func kernel(kc: Int, a: UnsafePointer<Float>, aStride: Int, b: UnsafePointer<Float>, bStride: Int,
                       c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, beta: Float) {
        var top = GemmRowBlock<Vector>(), bottom = GemmRowBlock<Vector>()
        var ap = UnsafeRawPointer(a), bp = UnsafeRawPointer(b)
        for _ in 0..<((kc + 1) / 2) {
            let b0 = bp.loadUnaligned(as: SIMD16<UInt32>.self), b1 = bp.loadUnaligned(fromByteOffset: 64, as: SIMD16<UInt32>.self)
            top.accumulatePairs(ap, b0, b1)
            bottom.accumulatePairs(ap + 24, b0, b1)
            ap += 48
            bp += 128
        }
        top.store(to: c, ldc: ldc, alpha: alpha, beta: beta)
        bottom.store(to: c + 6 &* ldc, ldc: ldc, alpha: alpha, beta: beta)
    }
}

extension GemmRowBlock where V == SIMD16<Float> {
    // r[i] += a.pair[i] · (b0, b1) for the six rows i (vdpbf16ps)
    @inline(__always)
    mutating func accumulatePairs(_ a: UnsafeRawPointer, _ b0: SIMD16<UInt32>, _ b1: SIMD16<UInt32>) {
        @inline(__always)
        func row(_ r: inout (V, V), _ i: Int) {
            let broadcast = SIMD16<UInt32>(repeating: a.load(fromByteOffset: 4 &* i, as: UInt32.self))
            r.0 = plexus_dpbf16(r.0, broadcast, b0)
            r.1 = plexus_dpbf16(r.1, broadcast, b1)
        }
        row(&r0, 0); row(&r1, 1); row(&r2, 2); row(&r3, 3); row(&r4, 4); row(&r5, 5)
    }
}

// panel r, word (q, i) → packed[r·kc·MR + q·MR + i] (as floats' offsets), i < MR = 12, q < ⌈kc/2⌉
/// Packs op(A)[row..<row+mc, depth..<depth+kc] into 12-row bf16 word panels (at the offsets fp32 panels have).
func packABFloat16(_ op: GemmOperands, rows: Int, row: Int, mc: Int, depth: Int, kc: Int, into packed: UnsafeMutablePointer<Float>) {
    var ir = 0
    while ir < mc {
        let first = row + ir
        if op.transposeA {
            packPairs(op.a + depth * op.lda + first, stride: op.lda, depthContiguous: false, depth: kc, width: rows,
                      valid: min(rows, mc - ir), available: op.m - first, into: packed + ir * kc)
        } else {
            packPairs(op.a + first * op.lda + depth, stride: op.lda, depthContiguous: true, depth: kc, width: rows,
                      valid: min(rows, mc - ir), available: 0, into: packed + ir * kc)
        }
        ir += rows
    }
}

// panel s, word (q, j) → packed[s·kc·NR + q·NR + j] (as floats' offsets), j < NR = 32, q < ⌈kc/2⌉
/// Packs op(B)[depth..<depth+kc, column..<column+nc] into 32-column bf16 word panels (at the offsets fp32 panels have).
func packBBFloat16(_ op: GemmOperands, columns: Int, depth: Int, kc: Int, column: Int, nc: Int,
                   into packed: UnsafeMutablePointer<Float>) {
    var jr = 0
    while jr < nc {
        let first = column + jr
        if op.transposeB {
            packPairs(op.b + first * op.ldb + depth, stride: op.ldb, depthContiguous: true, depth: kc, width: columns,
                      valid: min(columns, nc - jr), available: 0, into: packed + jr * kc)
        } else {
            packPairs(op.b + depth * op.ldb + first, stride: op.ldb, depthContiguous: false, depth: kc, width: columns,
                      valid: min(columns, nc - jr), available: op.n - first, into: packed + jr * kc)
        }
        jr += columns
    }
}

// panel[q·width + i] = bf16(v(2q, i)) | bf16(v(2q+1, i)) << 16 for q < ⌈depth/2⌉, i < width (v = 0 for i ≥ valid and
// past depth); v(p, i) = source[i·stride + p] if depthContiguous, else source[p·stride + i]
/// Rounds a width × depth block to one bf16 word panel, every value through vcvtne2ps2bf16 (so the same bits whatever
/// the block's shape). `available`: floats readable from each source row when not depthContiguous (≥ valid).
private func packPairs(_ source: UnsafePointer<Float>, stride: Int, depthContiguous: Bool, depth: Int, width: Int,
                       valid: Int, available: Int, into panel: UnsafeMutablePointer<Float>) {
    typealias F = SIMD16<Float>
    let words = UnsafeMutableRawPointer(panel)
    let pairs = (depth + 1) / 2
    // Up to 16 floats at `pointer` (count of them real, the rest zero).
    @inline(__always)
    func load(_ pointer: UnsafePointer<Float>, _ count: Int) -> F {
        count >= 16 ? F(loadingFrom: pointer) : count <= 0 ? F() : F(loadingFrom: pointer, count: count)
    }
    if depthContiguous {
        // 16 indexes × 32 depths at a time: each index's 32 floats become 16 words, then a 16×16 transpose stores
        // one row of 16 words per depth pair (a panel of 12 has room for the overhang: the next pair's row, or the
        // workspace's slack). A last block of fewer than 32 depths goes through `turned`.
        var stage = (F(), F(), F(), F(), F(), F(), F(), F(), F(), F(), F(), F(), F(), F(), F(), F())
        var turned = stage
        withUnsafeMutableBytes(of: &stage) { stageBytes in
            withUnsafeMutableBytes(of: &turned) { turnedBytes in
                let rowsOut = stageBytes.baseAddress!.assumingMemoryBound(to: Float.self)
                let columnsOut = turnedBytes.baseAddress!.assumingMemoryBound(to: Float.self)
                var group = 0
                while group < width {
                    var p = 0
                    while p < depth {
                        let count = min(32, depth - p)
                        for i in 0..<16 {
                            var bits = SIMD16<UInt32>()
                            if group + i < valid {
                                let row = source + (group + i) * stride + p
                                bits = plexus_cvtne2ps_pbh(load(row + 16, count - 16), load(row, count))
                            }
                            UnsafeMutableRawPointer(rowsOut + 16 * i).storeBytes(of: bits, as: SIMD16<UInt32>.self)
                        }
                        let destination = panel + (p / 2) * width + group
                        if count == 32 {
                            transposeSquare(F.self, rowsOut, stride: 16, rows: 16, into: destination, stride: width)
                        } else {
                            transposeSquare(F.self, rowsOut, stride: 16, rows: 16, into: columnsOut, stride: 16)
                            for q in 0..<((count + 1) / 2) { F(loadingFrom: columnsOut + 16 * q).store(to: destination + q * width) }
                        }
                        p += 32
                    }
                    group += 16
                }
            }
        }
        return
    }
    // Two depths × 16 indexes at a time: round both rows, then interleave their words (vpermw). Whole vectors are
    // stored, a panel of 12's overhang as above.
    let lane = SIMD16<UInt32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
    let interleave = lane | (lane &+ 16) &<< 16
    for q in 0..<pairs {
        let even = source + 2 * q * stride
        let hasOdd = 2 * q + 1 < depth
        var group = 0
        while group < width {
            let count = min(16, valid - group, available - group)
            let low = load(even + group, count), high = hasOdd ? load(even + stride + group, count) : F()
            let bits = plexus_permutexvar_epi16(interleave, plexus_cvtne2ps_pbh(high, low))
            (words + 4 * (q * width + group)).storeBytes(of: bits, as: SIMD16<UInt32>.self)
            group += 16
        }
    }
}
#endif
