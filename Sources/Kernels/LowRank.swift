// Low-rank factor products for PowerSGD gradient compression, row by row so that a row of the matrix stays in
// L1 while its rank-r products are formed: one memory pass per product instead of GEMM's packing passes
// (these products have r = 1..8 columns, where a packed GEMM is all packing).

// m[rows×columns] += e; pt[rank×rows] = (m · qtᵀ)ᵀ with qt [rank×columns]
/// Adds the error feedback `e` into `m` and projects every row of the sum on the `rank` rows of `qt`; the result
/// is stored transposed (column c of P contiguous in `pt`).
public func lowRankProject(_ m: UnsafeMutablePointer<Float>, adding e: UnsafePointer<Float>, rows: Int, columns: Int,
                           qt: UnsafePointer<Float>, rank: Int, into pt: UnsafeMutablePointer<Float>) {
    for row in 0..<rows {
        let mRow = m + row * columns, eRow = e + row * columns
        // Four factor columns per pass over the row, each its own chain of fused multiply-adds (the row is in L1).
        var c = 0
        while c < rank {
            let q0 = qt + c * columns, q1 = qt + min(c + 1, rank - 1) * columns
            let q2 = qt + min(c + 2, rank - 1) * columns, q3 = qt + min(c + 3, rank - 1) * columns
            var s0 = SIMD8<Float>(), s1 = SIMD8<Float>(), s2 = SIMD8<Float>(), s3 = SIMD8<Float>()
            var j = 0
            while j + 8 <= columns {
                var v = SIMD8(loadingFrom: mRow + j)
                if c == 0 {
                    v += SIMD8(loadingFrom: eRow + j)
                    v.store(to: mRow + j)
                }
                s0 = s0.addingProduct(v, SIMD8(loadingFrom: q0 + j))
                s1 = s1.addingProduct(v, SIMD8(loadingFrom: q1 + j))
                s2 = s2.addingProduct(v, SIMD8(loadingFrom: q2 + j))
                s3 = s3.addingProduct(v, SIMD8(loadingFrom: q3 + j))
                j += 8
            }
            var t0 = s0.sum(), t1 = s1.sum(), t2 = s2.sum(), t3 = s3.sum()
            while j < columns {
                if c == 0 { mRow[j] += eRow[j] }
                let v = mRow[j]
                t0 = t0.addingProduct(v, q0[j]); t1 = t1.addingProduct(v, q1[j])
                t2 = t2.addingProduct(v, q2[j]); t3 = t3.addingProduct(v, q3[j])
                j += 1
            }
            // Columns past `rank` repeated the last one: only the first min(4, rank − c) are kept.
            pt[c * rows + row] = t0
            if c + 1 < rank { pt[(c + 1) * rows + row] = t1 }
            if c + 2 < rank { pt[(c + 2) * rows + row] = t2 }
            if c + 3 < rank { pt[(c + 3) * rows + row] = t3 }
            c += 4
        }
    }
}

// qt[rank×columns] = pt · m with pt [rank×rows], m [rows×columns]
/// Projects the columns of `m` on the `rank` columns of P (given transposed as `pt`): the second PowerSGD factor,
/// stored transposed.
public func lowRankBackProject(_ m: UnsafePointer<Float>, rows: Int, columns: Int, pt: UnsafePointer<Float>, rank: Int,
                               into qt: UnsafeMutablePointer<Float>) {
    qt.update(repeating: 0, count: rank * columns)
    for row in 0..<rows {
        let mRow = m + row * columns
        for c in 0..<rank {
            let weight = pt[c * rows + row], weights = SIMD8(repeating: weight), target = qt + c * columns
            var j = 0
            while j + 8 <= columns {
                SIMD8(loadingFrom: target + j).addingProduct(weights, SIMD8(loadingFrom: mRow + j)).store(to: target + j)
                j += 8
            }
            while j < columns {
                target[j] = target[j].addingProduct(weight, mRow[j])
                j += 1
            }
        }
    }
}

// a = ptᵀ · qt [rows×columns]; e = m − a·share; m = a
/// Replaces `m` by its rank-`rank` approximation P·Qᵀ (from `pt` and `qt`) and keeps what it lost, scaled by
/// `share`, in `e`: e = m − share·(P·Qᵀ) (PowerSGD's error feedback for one of `1/share` ranks).
public func lowRankReconstruct(_ m: UnsafeMutablePointer<Float>, error e: UnsafeMutablePointer<Float>, rows: Int, columns: Int,
                               pt: UnsafePointer<Float>, qt: UnsafePointer<Float>, rank: Int, share: Float) {
    let shareVector = SIMD8(repeating: share)
    for row in 0..<rows {
        let mRow = m + row * columns, eRow = e + row * columns
        // Four blocks of 8 at once: four independent chains of `rank` fused multiply-adds.
        var j = 0
        while j + 32 <= columns {
            var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
            for c in 0..<rank {
                let weight = SIMD8(repeating: pt[c * rows + row]), q = qt + c * columns + j
                a0 = a0.addingProduct(weight, SIMD8(loadingFrom: q)); a1 = a1.addingProduct(weight, SIMD8(loadingFrom: q + 8))
                a2 = a2.addingProduct(weight, SIMD8(loadingFrom: q + 16)); a3 = a3.addingProduct(weight, SIMD8(loadingFrom: q + 24))
            }
            keep(a0, at: j, m: mRow, e: eRow, share: shareVector)
            keep(a1, at: j + 8, m: mRow, e: eRow, share: shareVector)
            keep(a2, at: j + 16, m: mRow, e: eRow, share: shareVector)
            keep(a3, at: j + 24, m: mRow, e: eRow, share: shareVector)
            j += 32
        }
        while j < columns {
            var approximation: Float = 0
            for c in 0..<rank { approximation = approximation.addingProduct(pt[c * rows + row], qt[c * columns + j]) }
            eRow[j] = mRow[j] - share * approximation
            mRow[j] = approximation
            j += 1
        }
    }
}

/// e[j..<j+8] = m − share·a, then m[j..<j+8] = a.
@inline(__always)
private func keep(_ a: SIMD8<Float>, at j: Int, m: UnsafeMutablePointer<Float>, e: UnsafeMutablePointer<Float>, share: SIMD8<Float>) {
    (SIMD8(loadingFrom: m + j) - share * a).store(to: e + j)
    a.store(to: m + j)
}

/// Naive references for the three products (plain loops, Double sums; P given transposed as `pt` [rank×rows]):
/// the fast ones must agree to rounding.
public enum LowRankReference {
    public static func project(_ m: [Float], adding e: [Float], rows: Int, columns: Int, qt: [Float], rank: Int) -> (m: [Float], pt: [Float]) {
        let sum = zip(m, e).map { $0 + $1 }
        let pt = (0..<rank * rows).map { index -> Float in
            let c = index / rows, row = index % rows
            return Float((0..<columns).reduce(0.0) { $0 + Double(sum[row * columns + $1]) * Double(qt[c * columns + $1]) })
        }
        return (sum, pt)
    }

    public static func backProject(_ m: [Float], rows: Int, columns: Int, pt: [Float], rank: Int) -> [Float] {
        (0..<rank * columns).map { index in
            let c = index / columns, j = index % columns
            return Float((0..<rows).reduce(0.0) { $0 + Double(pt[c * rows + $1]) * Double(m[$1 * columns + j]) })
        }
    }

    public static func reconstruct(_ m: [Float], rows: Int, columns: Int, pt: [Float], qt: [Float], rank: Int,
                                   share: Float) -> (m: [Float], e: [Float]) {
        let approximation = (0..<rows * columns).map { index -> Float in
            let row = index / columns, j = index % columns
            return Float((0..<rank).reduce(0.0) { $0 + Double(pt[$1 * rows + row]) * Double(qt[$1 * columns + j]) })
        }
        return (approximation, zip(m, approximation).map { $0 - share * $1 })
    }
}
