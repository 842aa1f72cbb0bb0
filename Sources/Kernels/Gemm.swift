import Foundation

// Packed, register-blocked, cache-blocked single-precision GEMM (BLIS-style loop nest).
//
// Loop nest per thread (the thread owns a block of rows or columns of C):
//   for jc in columns by NC          — packed B block (KC × NC) lives in L2/L3
//     for pc in 0..<k by KC          — the only k split; fixed by k alone
//       pack op(B)[pc..<pc+KC, jc..<jc+NC] into NR-column panels
//       for ic in rows by MC         — packed A block (MC × KC) lives in L2
//         pack op(A)[ic..<ic+MC, pc..<pc+KC] into MR-row panels (a transposed A is read in place)
//         for each NR panel, for each MR panel: 6×16 micro-kernel
//
// Determinism: every element of C is produced by the same micro-kernel lane sequence
// (acc = 0; acc = fma(a, b, acc) for p in the KC block in order; then C = alpha·acc + beta·C for
// the first block and C = alpha·acc + C afterwards). Edge tiles run the same kernel on a
// zero-padded copy, and threads only split C, so C[i, j] is bit-identical for any thread count,
// any m or n, and any tile position.

/// Rows of C per micro-tile (one broadcast of A per row).
let gemmMR = 6
/// Columns of C per micro-tile (two SIMD8 vectors).
let gemmNR = 16
/// Depth of one packed block; the k-summation is split at multiples of this and nowhere else.
/// A KC × NR micro-panel of B is 16 KiB, half of the 32 KiB L1d per core.
let gemmKC = 256
/// Rows of A packed at once (MC × KC floats ≈ 144 KiB, sized for the 512 KiB L2).
let gemmMC = 144
/// Columns of B packed at once (KC × NC floats = 1 MiB, sized for the shared L3).
let gemmNC = 1024

/// Products smaller than this many floating-point operations run on one thread.
let gemmParallelThreshold = 1_000_000

// MARK: - Workspace

/// Packing buffers of one running GEMM task; grown on demand and reused across calls.
final class GemmWorkspace {
    private(set) var packedA: UnsafeMutablePointer<Float>
    private(set) var packedB: UnsafeMutablePointer<Float>
    /// Zero-padded copy of an edge tile of C (MR × NR, row stride NR).
    let edgeTile: UnsafeMutablePointer<Float>
    private var transposedC: UnsafeMutablePointer<Float>
    private var capacityA = 0
    private var capacityTransposedC = 0
    private var capacityB = 0

    init() {
        packedA = GemmWorkspace.allocate(1)
        packedB = GemmWorkspace.allocate(1)
        edgeTile = GemmWorkspace.allocate(gemmMR * gemmNR)
        transposedC = GemmWorkspace.allocate(1)
    }

    deinit {
        packedA.deallocate()
        packedB.deallocate()
        edgeTile.deallocate()
        transposedC.deallocate()
    }

    /// Scratch of at least `count` floats for `gemmViaTranspose`'s Cᵀ.
    func reserveTransposedC(_ count: Int) -> UnsafeMutablePointer<Float> {
        if count > capacityTransposedC {
            transposedC.deallocate()
            transposedC = GemmWorkspace.allocate(count)
            capacityTransposedC = count
        }
        return transposedC
    }

    /// Makes room for `a` floats of packed A and `b` floats of packed B.
    func reserve(a: Int, b: Int) {
        if a > capacityA {
            packedA.deallocate()
            packedA = GemmWorkspace.allocate(a)
            capacityA = a
        }
        if b > capacityB {
            packedB.deallocate()
            packedB = GemmWorkspace.allocate(b)
            capacityB = b
        }
    }

    private static func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
        UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Float>.stride, alignment: 64)
            .bindMemory(to: Float.self, capacity: count)
    }
}

/// Process-wide free list of GEMM workspaces.
///
/// Each GEMM task takes a workspace for its duration and returns it, so concurrent GEMM calls from
/// any threads are safe, and after warm-up (one workspace per simultaneously running task, buffers
/// grown to the largest shape seen) a call performs no heap allocation. Memory is never released.
final class GemmWorkspacePool: @unchecked Sendable {
    private let lock = NSLock()
    private var available: [GemmWorkspace] = []

    func take() -> GemmWorkspace {
        lock.lock()
        defer { lock.unlock() }
        return available.popLast() ?? GemmWorkspace()
    }

    func give(_ workspace: GemmWorkspace) {
        lock.lock()
        defer { lock.unlock() }
        available.append(workspace)
    }
}

let gemmWorkspaces = GemmWorkspacePool()

// MARK: - Public entry points

/// C = alpha·op(A)·op(B) + beta·C for row-major matrices (packed, blocked, multithreaded over C).
///
/// op(A) is m×k (A stored m×k with row stride `lda`, or k×m when `transposeA`); op(B) is k×n
/// likewise. With `beta == 0` the prior contents of C are ignored (they may be NaN). Each element
/// of C is bit-identical whatever `threads`, `m`, `n` or its position in a tile.
public func gemm(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
    a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int
) {
    precondition(m >= 0 && n >= 0 && k >= 0, "gemm: negative dimension")
    guard m > 0 && n > 0 else { return }
    if k == 0 {
        scaleMatrix(c, rows: m, columns: n, ldc: ldc, beta: beta)
        return
    }
    if tileUtilization(rows: n, columns: m) > 1.2 * tileUtilization(rows: m, columns: n) {
        gemmViaTranspose(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                         a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, threads: threads)
        return
    }
    let operands = GemmOperands(
        transposeA: transposeA, transposeB: transposeB, k: k, alpha: alpha,
        a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)

    let rowPanels = (m + gemmMR - 1) / gemmMR
    let columnPanels = (n + gemmNR - 1) / gemmNR
    var parts = max(1, threads)
    if 2 * m * n * k < gemmParallelThreshold { parts = 1 }
    // Split whichever dimension of C leaves the largest thread with the least work.
    let costSplittingColumns = (columnPanels + parts - 1) / parts * rowPanels
    let costSplittingRows = (rowPanels + parts - 1) / parts * columnPanels
    let splitColumns = costSplittingColumns <= costSplittingRows
    parts = min(parts, splitColumns ? columnPanels : rowPanels)

    if parts == 1 {
        let workspace = gemmWorkspaces.take()
        gemmBlock(operands, rows: 0..<m, columns: 0..<n, workspace: workspace)
        gemmWorkspaces.give(workspace)
        return
    }
    parallelFor(count: parts, threads: parts, GemmPart(operands: operands, m: m, n: n, parts: parts,
                                                       splitColumns: splitColumns))
}

/// One thread's block of C: a contiguous run of column panels (or of row panels) of a GEMM.
private struct GemmPart: ParallelJob {
    let operands: GemmOperands
    let m: Int
    let n: Int
    let parts: Int
    let splitColumns: Bool

    func perform(_ part: Int) {
        let rows: Range<Int>
        let columns: Range<Int>
        if splitColumns {
            let panels = chunkRange(part, of: parts, total: (n + gemmNR - 1) / gemmNR)
            rows = 0..<m
            columns = (panels.lowerBound * gemmNR)..<min(n, panels.upperBound * gemmNR)
        } else {
            let panels = chunkRange(part, of: parts, total: (m + gemmMR - 1) / gemmMR)
            rows = (panels.lowerBound * gemmMR)..<min(m, panels.upperBound * gemmMR)
            columns = 0..<n
        }
        let workspace = gemmWorkspaces.take()
        gemmBlock(operands, rows: rows, columns: columns, workspace: workspace)
        gemmWorkspaces.give(workspace)
    }
}

/// Fraction of the micro-tiles' lanes that hold elements of a rows×columns C.
private func tileUtilization(rows: Int, columns: Int) -> Double {
    Double(rows * columns) / Double(roundUp(rows, gemmMR) * roundUp(columns, gemmNR))
}

/// C = alpha·op(A)·op(B) + beta·C computed as Cᵀ = op(B)ᵀ·op(A)ᵀ in a scratch buffer, for a narrow C.
///
/// A C only a few columns wide (the 10 logits of an output layer) fills 10 of each tile's 16 lanes;
/// its transpose puts the long side across the vectors. Each element is still the same fma chain over
/// the same KC blocks with the same epilogue (a·b == b·a exactly), so its bits do not change.
private func gemmViaTranspose(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
    a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int
) {
    // scratch[n×m] = Cᵀ
    let workspace = gemmWorkspaces.take()
    defer { gemmWorkspaces.give(workspace) }
    let scratch = workspace.reserveTransposedC(m * n)
    if beta != 0 {
        for i in 0..<m { for j in 0..<n { scratch[j * m + i] = c[i * ldc + j] } }
    }
    gemm(transposeA: !transposeB, transposeB: !transposeA, m: n, n: m, k: k, alpha: alpha,
         a: b, lda: ldb, b: a, ldb: lda, beta: beta, c: scratch, ldc: m, threads: threads)
    for i in 0..<m { for j in 0..<n { c[i * ldc + j] = scratch[j * m + i] } }
}

/// Naive reference for `gemm`: a triple loop accumulating each element in Float in k order.
public func gemmReference(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
    a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int
) {
    // C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C
    for i in 0..<m {
        for j in 0..<n {
            var sum: Float = 0
            for p in 0..<k {
                let x = transposeA ? a[p * lda + i] : a[i * lda + p]
                let y = transposeB ? b[j * ldb + p] : b[p * ldb + j]
                sum += x * y
            }
            let index = i * ldc + j
            c[index] = beta == 0 ? alpha * sum : alpha * sum + beta * c[index]
        }
    }
}

// MARK: - Dense-layer products

/// Dense forward pass y = x·Wᵀ + b for x [batch×inputWidth], W [outputWidth×inputWidth], y [batch×outputWidth].
public func denseForward(
    input x: UnsafePointer<Float>, weight w: UnsafePointer<Float>, bias b: UnsafePointer<Float>,
    output y: UnsafeMutablePointer<Float>, batch: Int, inputWidth: Int, outputWidth: Int, threads: Int
) {
    // y[batch×out] = x[batch×in] · W[out×in]ᵀ + b[out]
    guard batch > 0 && outputWidth > 0 else { return }
    // Seed every row of y with the bias, then accumulate the product onto it (beta = 1).
    for row in 0..<batch {
        (y + row * outputWidth).update(from: b, count: outputWidth)
    }
    gemm(transposeA: false, transposeB: true, m: batch, n: outputWidth, k: inputWidth, alpha: 1,
         a: x, lda: inputWidth, b: w, ldb: inputWidth, beta: 1, c: y, ldc: outputWidth, threads: threads)
}

/// Dense input gradient dx = dy·W for dy [batch×outputWidth], W [outputWidth×inputWidth], dx [batch×inputWidth].
public func denseInputGradient(
    outputGradient dy: UnsafePointer<Float>, weight w: UnsafePointer<Float>,
    inputGradient dx: UnsafeMutablePointer<Float>, batch: Int, inputWidth: Int, outputWidth: Int, threads: Int
) {
    // dx[batch×in] = dy[batch×out] · W[out×in]
    gemm(transposeA: false, transposeB: false, m: batch, n: inputWidth, k: outputWidth, alpha: 1,
         a: dy, lda: outputWidth, b: w, ldb: inputWidth, beta: 0, c: dx, ldc: inputWidth, threads: threads)
}

/// Dense parameter gradients dW = dyᵀ·x and db = Σ_batch dy (both overwritten; zeros when batch is 0).
public func denseWeightGradient(
    outputGradient dy: UnsafePointer<Float>, input x: UnsafePointer<Float>,
    weightGradient dw: UnsafeMutablePointer<Float>, biasGradient db: UnsafeMutablePointer<Float>,
    batch: Int, inputWidth: Int, outputWidth: Int, threads: Int
) {
    // dW[out×in] = dy[batch×out]ᵀ · x[batch×in]
    gemm(transposeA: true, transposeB: false, m: outputWidth, n: inputWidth, k: batch, alpha: 1,
         a: dy, lda: outputWidth, b: x, ldb: inputWidth, beta: 0, c: dw, ldc: inputWidth, threads: threads)
    // db[out] = Σ_r dy[r, :], summed in row order.
    db.update(repeating: 0, count: outputWidth)
    for row in 0..<batch {
        addProduct(dy + row * outputWidth, scaledBy: 1, to: db, count: outputWidth, threads: 1)
    }
}

/// Naive reference for `denseForward`.
public func denseForwardReference(
    input x: UnsafePointer<Float>, weight w: UnsafePointer<Float>, bias b: UnsafePointer<Float>,
    output y: UnsafeMutablePointer<Float>, batch: Int, inputWidth: Int, outputWidth: Int
) {
    for r in 0..<batch {
        for o in 0..<outputWidth {
            var sum: Float = 0
            for i in 0..<inputWidth { sum += x[r * inputWidth + i] * w[o * inputWidth + i] }
            y[r * outputWidth + o] = sum + b[o]
        }
    }
}

/// Naive reference for `denseInputGradient`.
public func denseInputGradientReference(
    outputGradient dy: UnsafePointer<Float>, weight w: UnsafePointer<Float>,
    inputGradient dx: UnsafeMutablePointer<Float>, batch: Int, inputWidth: Int, outputWidth: Int
) {
    for r in 0..<batch {
        for i in 0..<inputWidth {
            var sum: Float = 0
            for o in 0..<outputWidth { sum += dy[r * outputWidth + o] * w[o * inputWidth + i] }
            dx[r * inputWidth + i] = sum
        }
    }
}

/// Naive reference for `denseWeightGradient`.
public func denseWeightGradientReference(
    outputGradient dy: UnsafePointer<Float>, input x: UnsafePointer<Float>,
    weightGradient dw: UnsafeMutablePointer<Float>, biasGradient db: UnsafeMutablePointer<Float>,
    batch: Int, inputWidth: Int, outputWidth: Int
) {
    for o in 0..<outputWidth {
        var biasSum: Float = 0
        for r in 0..<batch { biasSum += dy[r * outputWidth + o] }
        db[o] = biasSum
        for i in 0..<inputWidth {
            var sum: Float = 0
            for r in 0..<batch { sum += dy[r * outputWidth + o] * x[r * inputWidth + i] }
            dw[o * inputWidth + i] = sum
        }
    }
}

// MARK: - Internals

/// Everything about one GEMM call except the block of C a task owns.
struct GemmOperands {
    let transposeA: Bool
    let transposeB: Bool
    let k: Int
    let alpha: Float
    let a: UnsafePointer<Float>
    let lda: Int
    let b: UnsafePointer<Float>
    let ldb: Int
    let beta: Float
    let c: UnsafeMutablePointer<Float>
    let ldc: Int
}

/// C = beta·C over an m×n block (C = 0 when beta is 0, ignoring NaN contents).
private func scaleMatrix(_ c: UnsafeMutablePointer<Float>, rows: Int, columns: Int, ldc: Int, beta: Float) {
    for i in 0..<rows {
        let row = c + i * ldc
        if beta == 0 {
            row.update(repeating: 0, count: columns)
        } else if beta != 1 {
            for j in 0..<columns { row[j] *= beta }
        }
    }
}

/// Computes the block C[rows, columns] of one GEMM on the calling thread.
private func gemmBlock(_ op: GemmOperands, rows: Range<Int>, columns: Range<Int>, workspace: GemmWorkspace) {
    let k = op.k
    let blockColumns = min(gemmNC, columns.count)
    let blockRows = min(gemmMC, rows.count)
    workspace.reserve(
        a: roundUp(blockRows, gemmMR) * min(gemmKC, k),
        b: roundUp(blockColumns, gemmNR) * min(gemmKC, k))
    let packedA = workspace.packedA
    let packedB = workspace.packedB
    let edge = workspace.edgeTile

    var jc = columns.lowerBound
    while jc < columns.upperBound {
        let nc = min(gemmNC, columns.upperBound - jc)
        var pc = 0
        while pc < k {
            let kc = min(gemmKC, k - pc)
            let beta = pc == 0 ? op.beta : 1
            packB(op, depth: pc, kc: kc, column: jc, nc: nc, into: packedB)
            var ic = rows.lowerBound
            while ic < rows.upperBound {
                let mc = min(gemmMC, rows.upperBound - ic)
                // A transposed (k×m) already holds the six values of each depth side by side: full MR-row
                // panels are read in place and only a ragged last panel is packed. Otherwise pack it all.
                let lastRows = mc % gemmMR
                if !op.transposeA {
                    packA(op, row: ic, mc: mc, depth: pc, kc: kc, into: packedA)
                } else if lastRows != 0 {
                    packA(op, row: ic + mc - lastRows, mc: lastRows, depth: pc, kc: kc, into: packedA)
                }
                var jr = 0
                while jr < nc {
                    let nr = min(gemmNR, nc - jr)
                    let panelB = UnsafePointer(packedB + jr * kc)
                    var ir = 0
                    while ir < mc {
                        let mr = min(gemmMR, mc - ir)
                        let panelA: UnsafePointer<Float>
                        let depthStride: Int
                        if !op.transposeA {
                            (panelA, depthStride) = (UnsafePointer(packedA + ir * kc), gemmMR)
                        } else if mr < gemmMR {
                            (panelA, depthStride) = (UnsafePointer(packedA), gemmMR)
                        } else {
                            (panelA, depthStride) = (op.a + pc * op.lda + ic + ir, op.lda)
                        }
                        let tile = op.c + (ic + ir) * op.ldc + jc + jr
                        if mr == gemmMR && nr == gemmNR {
                            microKernel6x16(kc: kc, a: panelA, depthStride: depthStride,
                                            b: panelB, c: tile, ldc: op.ldc, alpha: op.alpha, beta: beta)
                        } else {
                            // Same kernel on a zero-padded copy so edge elements get identical bits.
                            edge.update(repeating: 0, count: gemmMR * gemmNR)
                            if beta != 0 {
                                for i in 0..<mr {
                                    (edge + i * gemmNR).update(from: tile + i * op.ldc, count: nr)
                                }
                            }
                            microKernel6x16(kc: kc, a: panelA, depthStride: depthStride,
                                            b: panelB, c: edge, ldc: gemmNR, alpha: op.alpha, beta: beta)
                            for i in 0..<mr {
                                (tile + i * op.ldc).update(from: edge + i * gemmNR, count: nr)
                            }
                        }
                        ir += gemmMR
                    }
                    jr += gemmNR
                }
                ic += mc
            }
            pc += kc
        }
        jc += nc
    }
}

@inline(__always)
private func roundUp(_ value: Int, _ multiple: Int) -> Int {
    (value + multiple - 1) / multiple * multiple
}

@inline(__always)
private func load8(_ pointer: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(pointer).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always)
private func load8(_ pointer: UnsafeMutablePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(pointer).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always)
private func store8(_ value: SIMD8<Float>, _ pointer: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(pointer).storeBytes(of: value, as: SIMD8<Float>.self)
}

/// Packs op(A)[row..<row+mc, depth..<depth+kc] into MR-row panels, zero-padding the last panel.
private func packA(_ op: GemmOperands, row: Int, mc: Int, depth: Int, kc: Int, into packed: UnsafeMutablePointer<Float>) {
    // panel r, element (i, p) → packed[r·kc·MR + p·MR + i]
    let a = op.a
    let lda = op.lda
    var ir = 0
    while ir < mc {
        let mr = min(gemmMR, mc - ir)
        let panel = packed + ir * kc
        if op.transposeA {
            // A is k×m: row p of A holds op(A)[·, p] contiguously.
            var source = a + (depth) * lda + row + ir
            if mr == gemmMR {
                for p in 0..<kc {
                    let d = panel + p * gemmMR
                    d[0] = source[0]; d[1] = source[1]; d[2] = source[2]
                    d[3] = source[3]; d[4] = source[4]; d[5] = source[5]
                    source += lda
                }
            } else {
                for p in 0..<kc {
                    let d = panel + p * gemmMR
                    for i in 0..<gemmMR { d[i] = i < mr ? source[i] : 0 }
                    source += lda
                }
            }
        } else {
            let base = a + (row + ir) * lda + depth
            if mr == gemmMR {
                let r0 = base, r1 = base + lda, r2 = base + 2 * lda
                let r3 = base + 3 * lda, r4 = base + 4 * lda, r5 = base + 5 * lda
                for p in 0..<kc {
                    let d = panel + p * gemmMR
                    d[0] = r0[p]; d[1] = r1[p]; d[2] = r2[p]
                    d[3] = r3[p]; d[4] = r4[p]; d[5] = r5[p]
                }
            } else {
                for p in 0..<kc {
                    let d = panel + p * gemmMR
                    for i in 0..<gemmMR { d[i] = i < mr ? base[i * lda + p] : 0 }
                }
            }
        }
        ir += gemmMR
    }
}

/// Packs op(B)[depth..<depth+kc, column..<column+nc] into NR-column panels, zero-padding the last panel.
private func packB(_ op: GemmOperands, depth: Int, kc: Int, column: Int, nc: Int, into packed: UnsafeMutablePointer<Float>) {
    // panel s, element (p, j) → packed[s·kc·NR + p·NR + j]
    let b = op.b
    let ldb = op.ldb
    if !op.transposeB {
        var jr = 0
        while jr < nc {
            let nr = min(gemmNR, nc - jr)
            let panel = packed + jr * kc
            var source = b + depth * ldb + column + jr
            if nr == gemmNR {
                for p in 0..<kc {
                    let d = panel + p * gemmNR
                    store8(load8(source), d)
                    store8(load8(source + 8), d + 8)
                    source += ldb
                }
            } else {
                for p in 0..<kc {
                    let d = panel + p * gemmNR
                    for j in 0..<gemmNR { d[j] = j < nr ? source[j] : 0 }
                    source += ldb
                }
            }
            jr += gemmNR
        }
        return
    }
    // B is n×k: row j of B holds op(B)[·, j] contiguously.
    var jr = 0
    while jr < nc {
        let nr = min(gemmNR, nc - jr)
        let panel = packed + jr * kc
        let base = b + (column + jr) * ldb + depth
        if nr == gemmNR {
            // 8×8 blocks: gather 8 rows of B, transpose through registers.
            var p = 0
            while p + 8 <= kc {
                for half in 0..<2 {
                    let rowsBase = base + half * 8 * ldb + p
                    var r0 = load8(rowsBase), r1 = load8(rowsBase + ldb)
                    var r2 = load8(rowsBase + 2 * ldb), r3 = load8(rowsBase + 3 * ldb)
                    var r4 = load8(rowsBase + 4 * ldb), r5 = load8(rowsBase + 5 * ldb)
                    var r6 = load8(rowsBase + 6 * ldb), r7 = load8(rowsBase + 7 * ldb)
                    // Read as one 64-element sequence, each unzip (evens, then odds) rotates the
                    // 6-bit index right by one; three rotate (row, column) into (column, row).
                    for _ in 0..<3 {
                        let s01 = SIMD16(lowHalf: r0, highHalf: r1), s23 = SIMD16(lowHalf: r2, highHalf: r3)
                        let s45 = SIMD16(lowHalf: r4, highHalf: r5), s67 = SIMD16(lowHalf: r6, highHalf: r7)
                        (r0, r1, r2, r3) = (s01.evenHalf, s23.evenHalf, s45.evenHalf, s67.evenHalf)
                        (r4, r5, r6, r7) = (s01.oddHalf, s23.oddHalf, s45.oddHalf, s67.oddHalf)
                    }
                    let d = panel + p * gemmNR + half * 8
                    store8(r0, d); store8(r1, d + gemmNR)
                    store8(r2, d + 2 * gemmNR); store8(r3, d + 3 * gemmNR)
                    store8(r4, d + 4 * gemmNR); store8(r5, d + 5 * gemmNR)
                    store8(r6, d + 6 * gemmNR); store8(r7, d + 7 * gemmNR)
                }
                p += 8
            }
            while p < kc {
                let d = panel + p * gemmNR
                for j in 0..<gemmNR { d[j] = base[j * ldb + p] }
                p += 1
            }
        } else {
            for p in 0..<kc {
                let d = panel + p * gemmNR
                for j in 0..<gemmNR { d[j] = j < nr ? base[j * ldb + p] : 0 }
            }
        }
        jr += gemmNR
    }
}

/// The 6×16 register-blocked micro-kernel: C[6×16] = alpha·(Apanel·Bpanel) + beta·C.
///
/// A's six values for depth p are a[p·depthStride ..< p·depthStride + 6]: depthStride 6 for a packed
/// panel, lda for a transposed A read in place. The arithmetic is the same either way.
@inline(never)
private func microKernel6x16(
    kc: Int, a: UnsafePointer<Float>, depthStride: Int, b: UnsafePointer<Float>,
    c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, beta: Float
) {
    // acc[6×16] = A[6×kc] · B[kc×16]; B packed p-major (16 per p).
    // Twelve ymm accumulators, two B vectors and one broadcast A value stay in registers.
    var c00 = SIMD8<Float>(), c01 = SIMD8<Float>()
    var c10 = SIMD8<Float>(), c11 = SIMD8<Float>()
    var c20 = SIMD8<Float>(), c21 = SIMD8<Float>()
    var c30 = SIMD8<Float>(), c31 = SIMD8<Float>()
    var c40 = SIMD8<Float>(), c41 = SIMD8<Float>()
    var c50 = SIMD8<Float>(), c51 = SIMD8<Float>()
    var ap = a
    var bp = b
    for _ in 0..<kc {
        let b0 = load8(bp)
        let b1 = load8(bp + 8)
        var av = SIMD8<Float>(repeating: ap[0])
        c00 = c00.addingProduct(av, b0); c01 = c01.addingProduct(av, b1)
        av = SIMD8<Float>(repeating: ap[1])
        c10 = c10.addingProduct(av, b0); c11 = c11.addingProduct(av, b1)
        av = SIMD8<Float>(repeating: ap[2])
        c20 = c20.addingProduct(av, b0); c21 = c21.addingProduct(av, b1)
        av = SIMD8<Float>(repeating: ap[3])
        c30 = c30.addingProduct(av, b0); c31 = c31.addingProduct(av, b1)
        av = SIMD8<Float>(repeating: ap[4])
        c40 = c40.addingProduct(av, b0); c41 = c41.addingProduct(av, b1)
        av = SIMD8<Float>(repeating: ap[5])
        c50 = c50.addingProduct(av, b0); c51 = c51.addingProduct(av, b1)
        ap += depthStride
        bp += gemmNR
    }
    let alphaVector = SIMD8<Float>(repeating: alpha)
    if beta == 0 {
        store8(alphaVector * c00, c); store8(alphaVector * c01, c + 8)
        store8(alphaVector * c10, c + ldc); store8(alphaVector * c11, c + ldc + 8)
        store8(alphaVector * c20, c + 2 * ldc); store8(alphaVector * c21, c + 2 * ldc + 8)
        store8(alphaVector * c30, c + 3 * ldc); store8(alphaVector * c31, c + 3 * ldc + 8)
        store8(alphaVector * c40, c + 4 * ldc); store8(alphaVector * c41, c + 4 * ldc + 8)
        store8(alphaVector * c50, c + 5 * ldc); store8(alphaVector * c51, c + 5 * ldc + 8)
    } else {
        // alpha·acc and beta·C are rounded separately (no fusion), matching the reference order.
        let betaVector = SIMD8<Float>(repeating: beta)
        @inline(__always)
        func update(_ accumulator: SIMD8<Float>, _ pointer: UnsafeMutablePointer<Float>) {
            let scaled = alphaVector * accumulator
            let old = betaVector * load8(pointer)
            store8(scaled + old, pointer)
        }
        update(c00, c); update(c01, c + 8)
        update(c10, c + ldc); update(c11, c + ldc + 8)
        update(c20, c + 2 * ldc); update(c21, c + 2 * ldc + 8)
        update(c30, c + 3 * ldc); update(c31, c + 3 * ldc + 8)
        update(c40, c + 4 * ldc); update(c41, c + 4 * ldc + 8)
        update(c50, c + 5 * ldc); update(c51, c + 5 * ldc + 8)
    }
}
