// Packed, register-blocked, cache-blocked single-precision GEMM (BLIS-style loop nest): the driver.
//
// Loop nest per thread (the thread owns a block of rows or columns of C):
//   for jc in columns by NC          — packed B block (KC × NC) lives in L2/L3
//     for pc in 0..<k by KC          — the only k split; fixed by k alone
//       pack op(B)[pc..<pc+KC, jc..<jc+NC] into NR-column panels          (GemmPacking.swift)
//       for ic in rows by MC         — packed A block (MC × KC) lives in L2
//         pack op(A)[ic..<ic+MC, pc..<pc+KC] into MR-row panels (a transposed A is read in place)
//         for each NR panel, for each MR panel: MR×NR micro-kernel            (GemmMicroKernel.swift)
// MR × NR is the kernel variant's tile: 6×16 (avx2) or 12×32 (avx512).
//
// Determinism: every element of C is produced by the same lane sequence in every tile of every variant
// (acc = 0; acc = fma(a, b, acc) for p in the KC block in order; then C = alpha·acc + beta·C for the first
// block and C = alpha·acc + C afterwards). Edge tiles run the same kernel on a zero-padded copy, and threads
// only split C, so C[i, j] is bit-identical for any thread count, any m or n, any tile position and either
// kernel variant.

/// Depth of one packed block; the k-summation is split at multiples of this and nowhere else (the same in every
/// variant: it fixes the bits). A KC × 32 micro-panel of B is 32 KiB.
let gemmKC = 256
/// Rows of A packed at once (a multiple of every tile's rows; MC × KC floats = 144 KiB, in L2).
let gemmMC = 144
/// Columns of B packed at once (KC × NC floats = 1 MiB, in L2/L3).
let gemmNC = 1024

/// Products smaller than this many floating-point operations run on one thread.
let gemmParallelThreshold = 1_000_000

/// C = alpha·op(A)·op(B) + beta·C for row-major matrices (packed, blocked, multithreaded over C).
///
/// op(A) is m×k (A stored m×k with row stride `lda`, or k×m when `transposeA`); op(B) is k×n
/// likewise. With `beta == 0` the prior contents of C are ignored (they may be NaN). Each element
/// of C is bit-identical whatever `threads`, `m`, `n`, its position in a tile or the `variant`.
public func gemm(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
    a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int, variant: KernelVariant = .active,
    precision: MatrixPrecision = .fp32
) {
    precondition(m >= 0 && n >= 0 && k >= 0, "gemm: negative dimension")
    guard m > 0 && n > 0 else { return }
    if k == 0 {
        scaleMatrix(c, rows: m, columns: n, ldc: ldc, beta: beta)
        return
    }
    let call = GemmCall(operands: GemmOperands(
        transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
        a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc), threads: threads)
    guard precision == .bf16 else { return variant.run(call) }
    precondition(precision.missingFeature == nil, "gemm: bf16 products need AVX512_BF16")
    #if canImport(CCPU.AVX512)
    call.perform(with: Tile12x32BF16.self)
    #endif
}

/// Naive reference for `gemm`: a triple loop accumulating each element in Float in k order (with bf16, of the
/// operands rounded to bf16).
public func gemmReference(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
    a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int, precision: MatrixPrecision = .fp32
) {
    // C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C
    let round: (Float) -> Float = precision == .bf16 ? { floatFromBFloat16(bfloat16Bits($0)) } : { $0 }
    for i in 0..<m {
        for j in 0..<n {
            var sum: Float = 0
            for p in 0..<k {
                let x = round(transposeA ? a[p * lda + i] : a[i * lda + p])
                let y = round(transposeB ? b[j * ldb + p] : b[p * ldb + j])
                sum += x * y
            }
            let index = i * ldc + j
            c[index] = beta == 0 ? alpha * sum : alpha * sum + beta * c[index]
        }
    }
}

/// Everything about one GEMM call except the block of C a task owns.
struct GemmOperands {
    let transposeA: Bool
    let transposeB: Bool
    let m: Int
    let n: Int
    let k: Int
    let alpha: Float
    let a: UnsafePointer<Float>
    let lda: Int
    let b: UnsafePointer<Float>
    let ldb: Int
    let beta: Float
    let c: UnsafeMutablePointer<Float>
    let ldc: Int
    /// When set, C is not written: each group's product is added into fixed-point sums instead (alpha must be 1).
    var fixedPoint: FixedPointEpilogue? = nil

    /// The same product as Cᵀ = op(B)ᵀ·op(A)ᵀ written to `c` (n×m, row stride `ldc`).
    func transposed(into c: UnsafeMutablePointer<Float>, ldc: Int) -> GemmOperands {
        GemmOperands(transposeA: !transposeB, transposeB: !transposeA, m: n, n: m, k: k, alpha: alpha,
                     a: b, lda: ldb, b: a, ldb: lda, beta: beta, c: c, ldc: ldc)
    }
}

/// One `gemm` call, run with the kernel variant's tile.
struct GemmCall: GemmTileJob {
    let operands: GemmOperands
    let threads: Int

    func perform<Tile: GemmTile>(with tile: Tile.Type) {
        let (m, n) = (operands.m, operands.n)
        if operands.fixedPoint == nil, tileUtilization(Tile.self, rows: n, columns: m) > 1.2 * tileUtilization(Tile.self, rows: m, columns: n) {
            gemmViaTranspose(Tile.self, operands, threads: threads)
        } else {
            gemmSplit(Tile.self, operands, threads: threads)
        }
    }
}

/// Fraction of the micro-tiles' lanes that hold elements of a rows×columns C.
private func tileUtilization<Tile: GemmTile>(_: Tile.Type, rows: Int, columns: Int) -> Double {
    Double(rows * columns) / Double(roundUp(rows, Tile.rows) * roundUp(columns, Tile.columns))
}

/// Runs a GEMM on `threads` threads, each owning a block of columns (or rows) of C.
private func gemmSplit<Tile: GemmTile>(_: Tile.Type, _ operands: GemmOperands, threads: Int) {
    let (m, n, k) = (operands.m, operands.n, operands.k)
    let rowPanels = (m + Tile.rows - 1) / Tile.rows
    let columnPanels = (n + Tile.columns - 1) / Tile.columns
    var parts = max(1, threads)
    if 2 * m * n * k < gemmParallelThreshold { parts = 1 }
    // Split whichever dimension of C leaves the largest thread with the least work.
    let costSplittingColumns = (columnPanels + parts - 1) / parts * rowPanels
    let costSplittingRows = (rowPanels + parts - 1) / parts * columnPanels
    let splitColumns = costSplittingColumns <= costSplittingRows
    parts = min(parts, splitColumns ? columnPanels : rowPanels)
    parallelFor(count: parts, threads: parts, GemmPart<Tile>(operands: operands, parts: parts, splitColumns: splitColumns))
}

/// One thread's block of C: a contiguous run of column panels (or of row panels) of a GEMM.
private struct GemmPart<Tile: GemmTile>: ParallelJob {
    let operands: GemmOperands
    let parts: Int
    let splitColumns: Bool

    func perform(_ part: Int) {
        let (m, n) = (operands.m, operands.n)
        let rows: Range<Int>
        let columns: Range<Int>
        if splitColumns {
            (rows, columns) = (0..<m, chunkRange(part, of: parts, total: n, granule: Tile.columns))
        } else {
            (rows, columns) = (chunkRange(part, of: parts, total: m, granule: Tile.rows), 0..<n)
        }
        let workspace = gemmWorkspaces.take()
        let summable = gemmBlock(Tile.self, operands, rows: rows, columns: columns, workspace: workspace)
        operands.fixedPoint?.failed[part] = !summable
        gemmWorkspaces.give(workspace)
    }
}

/// C = alpha·op(A)·op(B) + beta·C computed as Cᵀ = op(B)ᵀ·op(A)ᵀ in a scratch buffer, for a narrow C.
///
/// A C only a few columns wide (the 10 logits of an output layer) fills 10 of each tile's columns;
/// its transpose puts the long side across the vectors. Each element is still the same fma chain over
/// the same KC blocks with the same epilogue (a·b == b·a exactly), so its bits do not change.
private func gemmViaTranspose<Tile: GemmTile>(_: Tile.Type, _ operands: GemmOperands, threads: Int) {
    // scratch[n×m] = Cᵀ
    let (m, n, c, ldc) = (operands.m, operands.n, operands.c, operands.ldc)
    let workspace = gemmWorkspaces.take()
    defer { gemmWorkspaces.give(workspace) }
    let scratch = workspace.reserveTransposedC(m * n)
    let stage = workspace.transposeStage
    if operands.beta != 0 {
        transposeMatrix(Tile.Vector.self, c, rows: m, columns: n, stride: ldc, into: scratch, stride: m, stage: stage)
    }
    gemmSplit(Tile.self, operands.transposed(into: scratch, ldc: m), threads: threads)
    transposeMatrix(Tile.Vector.self, scratch, rows: n, columns: m, stride: m, into: c, stride: ldc, stage: stage)
}

// destination[j·destinationStride + i] = source[i·stride + j] for i < rows, j < columns
/// Transposes a matrix block by block through registers (`transposeSquare`); `stage` holds 2·lanes² floats.
private func transposeMatrix<V: FloatVector>(_: V.Type, _ source: UnsafePointer<Float>, rows: Int, columns: Int, stride: Int,
                                             into destination: UnsafeMutablePointer<Float>, stride destinationStride: Int,
                                             stage: UnsafeMutablePointer<Float>) {
    let lanes = V.scalarCount, block = stage + lanes * lanes
    var row = 0
    while row < rows {
        let blockRows = min(lanes, rows - row)
        var column = 0
        while column < columns {
            let blockColumns = min(lanes, columns - column)
            // Whole rows of lanes floats for transposeSquare (lanes past blockColumns are not copied out).
            for i in 0..<blockRows {
                (stage + i * lanes).update(from: source + (row + i) * stride + column, count: blockColumns)
            }
            transposeSquare(V.self, stage, stride: lanes, rows: blockRows, into: block, stride: lanes)
            for j in 0..<blockColumns {
                (destination + (column + j) * destinationStride + row).update(from: block + j * lanes, count: blockRows)
            }
            column += lanes
        }
        row += lanes
    }
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

/// Computes the block C[rows, columns] of one GEMM on the calling thread; false if a fixed-point epilogue met a
/// value it cannot sum.
private func gemmBlock<Tile: GemmTile>(_: Tile.Type, _ op: GemmOperands, rows: Range<Int>, columns: Range<Int>,
                                       workspace: GemmWorkspace) -> Bool {
    let (mr, nr) = (Tile.rows, Tile.columns)
    let k = op.k
    // A fixed-point epilogue needs the k split at group boundaries: the deepest whole number of groups ≤ KC.
    let depthStep = op.fixedPoint.map { $0.group * max(1, gemmKC / $0.group) } ?? gemmKC
    var check = FixedPointRangeCheck()
    let blockColumns = min(gemmNC, columns.count)
    let blockRows = min(gemmMC, rows.count)
    workspace.reserve(a: roundUp(blockRows, mr) * min(gemmKC, k) + gemmPackingSlack,
                      b: roundUp(blockColumns, nr) * min(gemmKC, k))
    let packedA = workspace.packedA
    let packedB = workspace.packedB
    let edge = workspace.edgeTile

    // A B block used by one row panel only (a C of a few rows: the output layer's weight gradient) is read in place
    // rather than packed, like a transposed A: packing it would cost as much as the product. Only a ragged last
    // column panel is packed (zero-padded).
    let bInPlace = !Tile.packsBFloat16 && !op.transposeB && rows.count <= mr
    let aInPlace = !Tile.packsBFloat16 && op.transposeA

    var jc = columns.lowerBound
    while jc < columns.upperBound {
        let nc = min(gemmNC, columns.upperBound - jc)
        let lastColumns = nc % nr
        var pc = 0
        while pc < k {
            let kc = min(depthStep, k - pc)
            let beta = pc == 0 ? op.beta : 1
            if !bInPlace {
                packB(op, Tile.self, depth: pc, kc: kc, column: jc, nc: nc, into: packedB)
            } else if lastColumns != 0 {
                packB(op, Tile.self, depth: pc, kc: kc, column: jc + nc - lastColumns, nc: lastColumns, into: packedB)
            }
            var ic = rows.lowerBound
            while ic < rows.upperBound {
                let mc = min(gemmMC, rows.upperBound - ic)
                // A transposed (k×m) already holds a tile's rows of each depth side by side: full panels are read
                // in place and only a ragged last panel is packed. Otherwise pack it all.
                let lastRows = mc % mr
                if !aInPlace {
                    packA(op, Tile.self, row: ic, mc: mc, depth: pc, kc: kc, into: packedA)
                } else if lastRows != 0 {
                    packA(op, Tile.self, row: ic + mc - lastRows, mc: lastRows, depth: pc, kc: kc, into: packedA)
                }
                var jr = 0
                while jr < nc {
                    let tileColumns = min(nr, nc - jr)
                    let panelB: UnsafePointer<Float>
                    let bStride: Int
                    if !bInPlace {
                        (panelB, bStride) = (UnsafePointer(packedB + jr * kc), nr)
                    } else if tileColumns < nr {
                        (panelB, bStride) = (UnsafePointer(packedB), nr)
                    } else {
                        (panelB, bStride) = (op.b + pc * op.ldb + jc + jr, op.ldb)
                    }
                    var ir = 0
                    while ir < mc {
                        let tileRows = min(mr, mc - ir)
                        let panelA: UnsafePointer<Float>
                        let aStride: Int
                        if !aInPlace {
                            (panelA, aStride) = (UnsafePointer(packedA + ir * kc), mr)
                        } else if tileRows < mr {
                            (panelA, aStride) = (UnsafePointer(packedA), mr)
                        } else {
                            (panelA, aStride) = (op.a + pc * op.lda + ic + ir, op.lda)
                        }
                        let tile = op.c + (ic + ir) * op.ldc + jc + jr
                        if let fixedPoint = op.fixedPoint {
                            fixedPoint.add(Tile.self, kc: kc, a: panelA, aStride: aStride, b: panelB, bStride: bStride,
                                           row: ic + ir, column: jc + jr, rows: tileRows, columns: tileColumns,
                                           first: pc == 0, workspace: workspace, check: &check)
                        } else if tileRows == mr && tileColumns == nr {
                            Tile.kernel(kc: kc, a: panelA, aStride: aStride, b: panelB, bStride: bStride,
                                        c: tile, ldc: op.ldc, alpha: op.alpha, beta: beta)
                        } else {
                            // Same kernel on a zero-padded copy so edge elements get identical bits.
                            edge.update(repeating: 0, count: mr * nr)
                            if beta != 0 {
                                for i in 0..<tileRows { (edge + i * nr).update(from: tile + i * op.ldc, count: tileColumns) }
                            }
                            Tile.kernel(kc: kc, a: panelA, aStride: aStride, b: panelB, bStride: bStride,
                                        c: edge, ldc: nr, alpha: op.alpha, beta: beta)
                            for i in 0..<tileRows { (tile + i * op.ldc).update(from: edge + i * nr, count: tileColumns) }
                        }
                        ir += mr
                    }
                    jr += nr
                }
                ic += mc
            }
            pc += kc
        }
        jc += nc
    }
    return check.isSummable
}

@inline(__always)
private func roundUp(_ value: Int, _ multiple: Int) -> Int {
    (value + multiple - 1) / multiple * multiple
}
