// Low-rank factor products for PowerSGD gradient compression, a few rows at a time so that they stay in L1 while
// their rank-r products are formed: one memory pass per product instead of GEMM's packing passes (r = 1..8 columns,
// where a packed GEMM is all packing). Each is written once over the variant's vector (8 lanes on AVX2, 16 on AVX-512).

// pt[rank×rows] = (m · qtᵀ)ᵀ with m [rows×columns], qt [rank×columns]
/// Projects every row of `m` on the `rank` rows of `qt`; the result is stored transposed (column c of P contiguous
/// in `pt`).
public func lowRankProject(_ m: UnsafePointer<Float>, rows: Int, columns: Int, qt: UnsafePointer<Float>, rank: Int,
                           into pt: UnsafeMutablePointer<Float>, variant: KernelVariant = .active) {
    variant.run(ProjectJob(m: m, rows: rows, columns: columns, qt: qt, rank: rank, pt: pt))
}

private struct ProjectJob: VectorJob {
    let m: UnsafePointer<Float>, rows: Int, columns: Int
    let qt: UnsafePointer<Float>, rank: Int, pt: UnsafeMutablePointer<Float>

    // Four rows by four factor columns a pass, sixteen chains of fused multiply-adds: each vector of qt is loaded
    // once for four rows (rows past the end repeat the last, columns past `rank` the last one; neither is stored).
    func perform<V: FloatVector>(as _: V.Type) {
        let width = V.scalarCount
        for row in stride(from: 0, to: rows, by: 4) {
            let block = min(4, rows - row), m0 = m + row * columns, m1 = m + (row + min(1, block - 1)) * columns
            let m2 = m + (row + min(2, block - 1)) * columns, m3 = m + (row + min(3, block - 1)) * columns
            for c in stride(from: 0, to: rank, by: 4) {
                let q0 = qt + c * columns, q1 = qt + min(c + 1, rank - 1) * columns
                let q2 = qt + min(c + 2, rank - 1) * columns, q3 = qt + min(c + 3, rank - 1) * columns
                var s = (((V(), V(), V(), V())), (V(), V(), V(), V()), (V(), V(), V(), V()), (V(), V(), V(), V()))
                @inline(__always) func add(_ t: inout (V, V, V, V), _ x: V, _ a: (V, V, V, V)) {
                    t.0 = t.0.addingProduct(x, a.0); t.1 = t.1.addingProduct(x, a.1)
                    t.2 = t.2.addingProduct(x, a.2); t.3 = t.3.addingProduct(x, a.3)
                }
                var j = 0
                while j + width <= columns {
                    let a = (V(loadingFrom: q0 + j), V(loadingFrom: q1 + j), V(loadingFrom: q2 + j), V(loadingFrom: q3 + j))
                    add(&s.0, V(loadingFrom: m0 + j), a); add(&s.1, V(loadingFrom: m1 + j), a)
                    add(&s.2, V(loadingFrom: m2 + j), a); add(&s.3, V(loadingFrom: m3 + j), a)
                    j += width
                }
                @inline(__always) func store(_ t: (V, V, V, V), _ r: Int, _ mRow: UnsafePointer<Float>, tail j: Int) {
                    guard r < block else { return }
                    var sums = (t.0.sum(), t.1.sum(), t.2.sum(), t.3.sum())
                    for k in j..<columns {
                        let v = mRow[k]
                        sums.0 = sums.0.addingProduct(v, q0[k]); sums.1 = sums.1.addingProduct(v, q1[k])
                        sums.2 = sums.2.addingProduct(v, q2[k]); sums.3 = sums.3.addingProduct(v, q3[k])
                    }
                    pt[c * rows + row + r] = sums.0
                    if c + 1 < rank { pt[(c + 1) * rows + row + r] = sums.1 }
                    if c + 2 < rank { pt[(c + 2) * rows + row + r] = sums.2 }
                    if c + 3 < rank { pt[(c + 3) * rows + row + r] = sums.3 }
                }
                store(s.0, 0, m0, tail: j); store(s.1, 1, m1, tail: j); store(s.2, 2, m2, tail: j); store(s.3, 3, m3, tail: j)
            }
        }
    }
}

// qt[rank×columns] = pt · m with pt [rank×rows], m [rows×columns]
/// Projects the columns of `m` on the `rank` columns of P (given transposed as `pt`): the second PowerSGD factor,
/// stored transposed.
public func lowRankBackProject(_ m: UnsafePointer<Float>, rows: Int, columns: Int, pt: UnsafePointer<Float>, rank: Int,
                               into qt: UnsafeMutablePointer<Float>, variant: KernelVariant = .active) {
    qt.update(repeating: 0, count: rank * columns)
    variant.run(BackProjectJob(m: m, rows: rows, columns: columns, pt: pt, rank: rank, qt: qt))
}

private struct BackProjectJob: VectorJob {
    let m: UnsafePointer<Float>, rows: Int, columns: Int, pt: UnsafePointer<Float>, rank: Int
    let qt: UnsafeMutablePointer<Float>

    // Four rows at a time: each factor row of qt (in L1) is loaded and stored once per four rows of m, not per row;
    // each vector of the four rows is loaded once for up to four factor rows, whose weights stay in registers.
    func perform<V: FloatVector>(as _: V.Type) {
        let width = V.scalarCount
        for row in stride(from: 0, to: rows, by: 4) {
            let block = min(4, rows - row)
            // Rows past the matrix's end repeat its last one with weight 0.
            let m0 = m + row * columns, m1 = m + (row + min(1, block - 1)) * columns
            let m2 = m + (row + min(2, block - 1)) * columns, m3 = m + (row + min(3, block - 1)) * columns
            for c in stride(from: 0, to: rank, by: 4) {
                let count = min(4, rank - c)
                // The block's weights of factor row c + k (those past `count` unused).
                func weights(_ k: Int) -> (Float, Float, Float, Float) {
                    guard k < count else { return (0, 0, 0, 0) }
                    let w = pt + (c + k) * rows + row
                    return (w[0], block > 1 ? w[1] : 0, block > 2 ? w[2] : 0, block > 3 ? w[3] : 0)
                }
                let w = (weights(0), weights(1), weights(2), weights(3))
                func broadcast(_ w: (Float, Float, Float, Float)) -> (V, V, V, V) {
                    (V(repeating: w.0), V(repeating: w.1), V(repeating: w.2), V(repeating: w.3))
                }
                let v = (broadcast(w.0), broadcast(w.1), broadcast(w.2), broadcast(w.3))
                let t0 = qt + c * columns, t1 = qt + (c + 1) * columns, t2 = qt + (c + 2) * columns, t3 = qt + (c + 3) * columns
                var j = 0
                while j + width <= columns {
                    let x0 = V(loadingFrom: m0 + j), x1 = V(loadingFrom: m1 + j)
                    let x2 = V(loadingFrom: m2 + j), x3 = V(loadingFrom: m3 + j)
                    @inline(__always)
                    func update(_ target: UnsafeMutablePointer<Float>, _ v: (V, V, V, V)) {
                        var t = V(loadingFrom: target + j)
                        t = t.addingProduct(v.0, x0); t = t.addingProduct(v.1, x1)
                        t = t.addingProduct(v.2, x2); t = t.addingProduct(v.3, x3)
                        t.store(to: target + j)
                    }
                    update(t0, v.0)
                    if count > 1 { update(t1, v.1) }
                    if count > 2 { update(t2, v.2) }
                    if count > 3 { update(t3, v.3) }
                    j += width
                }
                @inline(__always)
                func tail(_ target: UnsafeMutablePointer<Float>, _ w: (Float, Float, Float, Float)) {
                    for k in j..<columns {
                        var t = target[k]
                        t = t.addingProduct(w.0, m0[k]); t = t.addingProduct(w.1, m1[k])
                        t = t.addingProduct(w.2, m2[k]); t = t.addingProduct(w.3, m3[k])
                        target[k] = t
                    }
                }
                tail(t0, w.0)
                if count > 1 { tail(t1, w.1) }
                if count > 2 { tail(t2, w.2) }
                if count > 3 { tail(t3, w.3) }
            }
        }
    }
}

// a = ptᵀ · qt [rows×columns] (rows `only`, from a's start); m = m − a·share in place
/// Writes the rank-`rank` approximation P·Qᵀ of `m` (from `pt` and `qt`) to `approximation` and leaves in `m` what
/// it lost, scaled by `share`: m − share·(P·Qᵀ) (PowerSGD's error feedback for one of `1/share` ranks; 0 leaves m as
/// it is). With `only`, just those rows, written from `approximation`'s start.
public func lowRankReconstruct(_ m: UnsafeMutablePointer<Float>, approximation a: UnsafeMutablePointer<Float>, rows: Int,
                               columns: Int, pt: UnsafePointer<Float>, qt: UnsafePointer<Float>, rank: Int, share: Float,
                               only: Range<Int>? = nil, variant: KernelVariant = .active) {
    variant.run(ReconstructJob(m: m, a: a, rows: rows, columns: columns, pt: pt, qt: qt, rank: rank, share: share,
                               only: only ?? 0..<rows))
}

private struct ReconstructJob: VectorJob {
    let m: UnsafeMutablePointer<Float>, a: UnsafeMutablePointer<Float>, rows: Int, columns: Int
    let pt: UnsafePointer<Float>, qt: UnsafePointer<Float>, rank: Int, share: Float, only: Range<Int>

    // Factor columns four at a time, their weights broadcast once per row (columns past `rank` repeat the last one
    // with weight 0): the inner loop is four loads and fused multiply-adds a vector. Past the first four, a is read
    // back and added to; the last four also take a·share from m. Each vector's chain is independent of the next one's.
    func perform<V: FloatVector>(as _: V.Type) {
        let width = V.scalarCount, shareVector = V(repeating: share), vectorEnd = columns - columns % width
        for row in only {
            let mRow = m + row * columns, aRow = a + (row - only.lowerBound) * columns
            var c = 0
            while c < rank {
                let (first, last) = (c == 0, c + 4 >= rank && share != 0)
                let q0 = qt + c * columns, q1 = qt + min(c + 1, rank - 1) * columns
                let q2 = qt + min(c + 2, rank - 1) * columns, q3 = qt + min(c + 3, rank - 1) * columns
                let w = pt + c * rows + row
                let w0 = V(repeating: w[0]), w1 = V(repeating: c + 1 < rank ? w[rows] : 0)
                let w2 = V(repeating: c + 2 < rank ? w[2 * rows] : 0), w3 = V(repeating: c + 3 < rank ? w[3 * rows] : 0)
                for j in stride(from: 0, to: vectorEnd, by: width) {
                    var sum = first ? w0 * V(loadingFrom: q0 + j) : V(loadingFrom: aRow + j).addingProduct(w0, V(loadingFrom: q0 + j))
                    sum = sum.addingProduct(w1, V(loadingFrom: q1 + j))
                    sum = sum.addingProduct(w2, V(loadingFrom: q2 + j))
                    sum = sum.addingProduct(w3, V(loadingFrom: q3 + j))
                    sum.store(to: aRow + j)
                    if last { (V(loadingFrom: mRow + j) - shareVector * sum).store(to: mRow + j) }
                }
                c += 4
            }
            for j in vectorEnd..<columns {
                var approximation: Float = 0
                for c in 0..<rank { approximation = approximation.addingProduct(pt[c * rows + row], qt[c * columns + j]) }
                if share != 0 { mRow[j] -= share * approximation }
                aRow[j] = approximation
            }
        }
    }
}

// Σ (ptᵀ·qt)² over [rows×columns] = Σ_a,b (pt·ptᵀ)[a,b]·(qt·qtᵀ)[a,b], with pt [rank×rows], qt [rank×columns]
/// The squared Frobenius norm of P·Qᵀ from its factors' Gram matrices, in Double: O(rank²·(rows + columns)) instead of
/// a pass over the product. Any pt (orthonormal or not); the same bits for the same factors.
public func lowRankSquaredNorm(pt: UnsafePointer<Float>, rows: Int, qt: UnsafePointer<Float>, columns: Int, rank: Int) -> Double {
    var total = 0.0
    for a in 0..<rank {
        for b in a..<rank {
            let term = sumOfProducts(pt + a * rows, pt + b * rows, count: rows)
                * sumOfProducts(qt + a * columns, qt + b * columns, count: columns)
            total += a == b ? term : 2 * term
        }
    }
    return total
}

/// Naive references for the three products and the norm (plain loops, Double sums; P given transposed as `pt` [rank×rows]):
/// the fast ones must agree to rounding.
public enum LowRankReference {
    public static func project(_ m: [Float], rows: Int, columns: Int, qt: [Float], rank: Int) -> [Float] {
        (0..<rank * rows).map { index -> Float in
            let c = index / rows, row = index % rows
            return Float((0..<columns).reduce(0.0) { $0 + Double(m[row * columns + $1]) * Double(qt[c * columns + $1]) })
        }
    }

    public static func backProject(_ m: [Float], rows: Int, columns: Int, pt: [Float], rank: Int) -> [Float] {
        (0..<rank * columns).map { index in
            let c = index / columns, j = index % columns
            return Float((0..<rows).reduce(0.0) { $0 + Double(pt[c * rows + $1]) * Double(m[$1 * columns + j]) })
        }
    }

    public static func reconstruct(_ m: [Float], rows: Int, columns: Int, pt: [Float], qt: [Float], rank: Int,
                                   share: Float) -> (approximation: [Float], error: [Float]) {
        let approximation = (0..<rows * columns).map { index -> Float in
            let row = index / columns, j = index % columns
            return Float((0..<rank).reduce(0.0) { $0 + Double(pt[$1 * rows + row]) * Double(qt[$1 * columns + j]) })
        }
        return (approximation, zip(m, approximation).map { $0 - share * $1 })
    }

    /// ‖P·Qᵀ‖² over the formed product.
    public static func squaredNorm(rows: Int, columns: Int, pt: [Float], qt: [Float], rank: Int) -> Double {
        reconstruct([Float](repeating: 0, count: rows * columns), rows: rows, columns: columns, pt: pt, qt: qt, rank: rank,
                    share: 0).approximation.reduce(0.0) { $0 + Double($1) * Double($1) }
    }
}
