// Packing of op(A) and op(B) blocks into the panel layouts the micro-kernel reads.

/// Packs op(A)[row..<row+mc, depth..<depth+kc] into `Tile.rows`-row panels, zero-padding the last panel.
func packA<Tile: GemmTile>(_ op: GemmOperands, _: Tile.Type, row: Int, mc: Int, depth: Int, kc: Int,
                           into packed: UnsafeMutablePointer<Float>) {
    // panel r, element (i, p) → packed[r·kc·MR + p·MR + i]
    let rows = Tile.rows
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
            let base = a + (row + ir) * lda + depth
            if mr == rows {
                for p in 0..<kc {
                    let d = panel + p * rows
                    for i in 0..<rows { d[i] = base[i * lda + p] }
                }
            } else {
                for p in 0..<kc {
                    let d = panel + p * rows
                    for i in 0..<rows { d[i] = i < mr ? base[i * lda + p] : 0 }
                }
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
            while p + 8 <= kc {
                for block in 0..<(columns / 8) {
                    transpose8x8(base + block * 8 * ldb + p, stride: ldb, into: panel + p * columns + block * 8,
                                 stride: columns)
                }
                p += 8
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

// destination[j·destinationStride + i] = source[i·stride + j] for i, j in 0..<8
/// Transposes an 8×8 block of floats through registers.
@inline(__always)
private func transpose8x8(_ source: UnsafePointer<Float>, stride: Int, into destination: UnsafeMutablePointer<Float>,
                          stride destinationStride: Int) {
    var r0 = SIMD8<Float>(loadingFrom: source), r1 = SIMD8<Float>(loadingFrom: source + stride)
    var r2 = SIMD8<Float>(loadingFrom: source + 2 * stride), r3 = SIMD8<Float>(loadingFrom: source + 3 * stride)
    var r4 = SIMD8<Float>(loadingFrom: source + 4 * stride), r5 = SIMD8<Float>(loadingFrom: source + 5 * stride)
    var r6 = SIMD8<Float>(loadingFrom: source + 6 * stride), r7 = SIMD8<Float>(loadingFrom: source + 7 * stride)
    // Read as one 64-element sequence, each unzip (evens, then odds) rotates the 6-bit index right by one;
    // three rotate (row, column) into (column, row).
    for _ in 0..<3 {
        let s01 = SIMD16(lowHalf: r0, highHalf: r1), s23 = SIMD16(lowHalf: r2, highHalf: r3)
        let s45 = SIMD16(lowHalf: r4, highHalf: r5), s67 = SIMD16(lowHalf: r6, highHalf: r7)
        (r0, r1, r2, r3) = (s01.evenHalf, s23.evenHalf, s45.evenHalf, s67.evenHalf)
        (r4, r5, r6, r7) = (s01.oddHalf, s23.oddHalf, s45.oddHalf, s67.oddHalf)
    }
    let d = destination
    r0.store(to: d); r1.store(to: d + destinationStride)
    r2.store(to: d + 2 * destinationStride); r3.store(to: d + 3 * destinationStride)
    r4.store(to: d + 4 * destinationStride); r5.store(to: d + 5 * destinationStride)
    r6.store(to: d + 6 * destinationStride); r7.store(to: d + 7 * destinationStride)
}
