// Packing of op(A) and op(B) blocks into the panel layouts the micro-kernel reads.

import CCPU

/// Packs op(A)[row..<row+mc, depth..<depth+kc] into `Tile.rows`-row panels, zero-padding the last panel.
func packA<Tile: GemmTile>(_ op: GemmOperands, _: Tile.Type, row: Int, mc: Int, depth: Int, kc: Int,
                           into packed: UnsafeMutablePointer<Float>) {
    // panel r, element (i, p) → packed[r·kc·MR + p·MR + i]
    let rows = Tile.rows
    #if canImport(CCPU.AVX512)
    if Tile.packsBFloat16 { return packABFloat16(op, rows: rows, row: row, mc: mc, depth: depth, kc: kc, into: packed) }
    #endif
    let a = op.a
    let lda = op.lda
    var ir = 0
    while ir < mc {
        let mr = min(rows, mc - ir)
        let panel = packed + ir * kc
        if op.transposeA {
            // A is k×m: row p of A holds op(A)[·, p] contiguously.
            var source = a + depth * lda + row + ir
            for p in 0..<kc {
                let d = panel + p * rows
                if mr == rows {
                    for i in 0..<rows { d[i] = source[i] }
                } else {
                    for i in 0..<rows { d[i] = i < mr ? source[i] : 0 }
                }
                source += lda
            }
        } else {
            // Blocks of `lanes` depths: the panel's rows (zero-padded to lanes) transposed through registers, each
            // depth's `rows` values stored as a whole vector that the next one partly overwrites (the workspace has
            // slack for the last one's overhang).
            let base = a + (row + ir) * lda + depth
            let lanes = Tile.Vector.scalarCount
            assert(rows <= lanes, "packA: a vector must hold a panel's rows")
            var p = 0
            while p + lanes <= kc {
                transposeSquare(Tile.Vector.self, base + p, stride: lda, rows: mr, into: panel + p * rows, stride: rows)
                p += lanes
            }
            while p < kc {
                let d = panel + p * rows
                for i in 0..<rows { d[i] = i < mr ? base[i * lda + p] : 0 }
                p += 1
            }
        }
        ir += rows
    }
}

/// Packs op(B)[depth..<depth+kc, column..<column+nc] into `Tile.columns`-column panels, zero-padding the last panel.
func packB<Tile: GemmTile>(_ op: GemmOperands, _: Tile.Type, depth: Int, kc: Int, column: Int, nc: Int,
                           into packed: UnsafeMutablePointer<Float>) {
    // panel s, element (p, j) → packed[s·kc·NR + p·NR + j]
    typealias V = Tile.Vector
    let columns = Tile.columns, lanes = V.scalarCount
    #if canImport(CCPU.AVX512)
    if Tile.packsBFloat16 { return packBBFloat16(op, columns: columns, depth: depth, kc: kc, column: column, nc: nc, into: packed) }
    #endif
    let b = op.b
    let ldb = op.ldb
    if !op.transposeB {
        var jr = 0
        while jr < nc {
            let nr = min(columns, nc - jr)
            let panel = packed + jr * kc
            var source = b + depth * ldb + column + jr
            if nr == columns {
                for p in 0..<kc {
                    let d = panel + p * columns
                    V(loadingFrom: source).store(to: d)
                    V(loadingFrom: source + lanes).store(to: d + lanes)
                    source += ldb
                }
            } else {
                for p in 0..<kc {
                    let d = panel + p * columns
                    for j in 0..<columns { d[j] = j < nr ? source[j] : 0 }
                    source += ldb
                }
            }
            jr += columns
        }
        return
    }
    // B is n×k: row j of B holds op(B)[·, j] contiguously.
    var jr = 0
    while jr < nc {
        let nr = min(columns, nc - jr)
        let panel = packed + jr * kc
        let base = b + (column + jr) * ldb + depth
        if nr == columns {
            var p = 0
            while p + lanes <= kc {
                for block in 0..<(columns / lanes) {
                    transposeSquare(V.self, base + block * lanes * ldb + p, stride: ldb, rows: lanes,
                                    into: panel + p * columns + block * lanes, stride: columns)
                }
                p += lanes
            }
            while p < kc {
                let d = panel + p * columns
                for j in 0..<columns { d[j] = base[j * ldb + p] }
                p += 1
            }
        } else {
            for p in 0..<kc {
                let d = panel + p * columns
                for j in 0..<columns { d[j] = j < nr ? base[j * ldb + p] : 0 }
            }
        }
        jr += columns
    }
}

/// Floats a packing may write past the end of its panels (packA's overlapping stores); the workspace adds them.
let gemmPackingSlack = 16

// destination[q·destinationStride + i] = source[i·stride + q] for i < rows, 0 for rows ≤ i < lanes; q in 0..<lanes
/// Transposes a lanes × lanes block of floats (lanes = 8 or 16) through registers (rows beyond `rows` read as zeros),
/// storing each column of the block as one whole vector of `V`.
///
/// The block is read as one sequence of lanes² elements: each round of unzips (the evens of a pair of rows, then
/// the odds) rotates an element's index bits right by one, and log2(lanes) rounds swap (row, column).
@inline(__always)
func transposeSquare<V: FloatVector>(_: V.Type, _ source: UnsafePointer<Float>, stride: Int, rows: Int,
                                     into destination: UnsafeMutablePointer<Float>, stride destinationStride: Int) {
    let wide = V.scalarCount == 16
    assert(wide || V.scalarCount == 8)
    @inline(__always)
    func row(_ i: Int) -> V { i < rows ? V(loadingFrom: source + i &* stride) : V() }
    var r0 = row(0), r1 = row(1), r2 = row(2), r3 = row(3), r4 = row(4), r5 = row(5), r6 = row(6), r7 = row(7)
    var r8 = V(), r9 = V(), r10 = V(), r11 = V(), r12 = V(), r13 = V(), r14 = V(), r15 = V()
    if wide { (r8, r9, r10, r11, r12, r13, r14, r15) = (row(8), row(9), row(10), row(11), row(12), row(13), row(14), row(15)) }
    for _ in 0..<(wide ? 4 : 3) {
        let (e0, o0) = V.unzip(r0, r1), (e1, o1) = V.unzip(r2, r3), (e2, o2) = V.unzip(r4, r5), (e3, o3) = V.unzip(r6, r7)
        if wide {
            let (e4, o4) = V.unzip(r8, r9), (e5, o5) = V.unzip(r10, r11)
            let (e6, o6) = V.unzip(r12, r13), (e7, o7) = V.unzip(r14, r15)
            (r0, r1, r2, r3, r4, r5, r6, r7) = (e0, e1, e2, e3, e4, e5, e6, e7)
            (r8, r9, r10, r11, r12, r13, r14, r15) = (o0, o1, o2, o3, o4, o5, o6, o7)
        } else {
            (r0, r1, r2, r3, r4, r5, r6, r7) = (e0, e1, e2, e3, o0, o1, o2, o3)
        }
    }
    let d = destination, ds = destinationStride
    r0.store(to: d); r1.store(to: d + ds); r2.store(to: d + 2 &* ds); r3.store(to: d + 3 &* ds)
    r4.store(to: d + 4 &* ds); r5.store(to: d + 5 &* ds); r6.store(to: d + 6 &* ds); r7.store(to: d + 7 &* ds)
    if wide {
        r8.store(to: d + 8 &* ds); r9.store(to: d + 9 &* ds); r10.store(to: d + 10 &* ds); r11.store(to: d + 11 &* ds)
        r12.store(to: d + 12 &* ds); r13.store(to: d + 13 &* ds); r14.store(to: d + 14 &* ds); r15.store(to: d + 15 &* ds)
    }
}
