// The dense weight gradient of deterministic mode: one GEMM over all of a rank's rows whose epilogue adds each
// fixed group's product into 64-bit fixed point, instead of one GEMM and one pass over the gradient per group.

/// Groups up to this many rows can be summed by `denseWeightGradientFixedPoint` (a group must fit one KC block).
public let fixedPointGemmMaximumGroup = gemmKC

/// Where a fixed-point GEMM adds its groups' products: sums[i·ldSums + j] += round(C_g[i, j] · 2^40) for each group g
/// of `group` consecutive depths (the first group overwrites when `replacing`), or, with `floats`, the whole sum
/// over all groups converted back to Float there (the GEMM's k is then one block).
struct FixedPointEpilogue {
    let sums: UnsafeMutablePointer<Int64>
    let ldSums: Int
    let group: Int
    let replacing: Bool
    /// Where the complete sums go as Float (row stride `ldSums`) instead of `sums`, if given.
    let floats: UnsafeMutablePointer<Float>?
    /// One flag per thread part: set when it met a value it cannot sum (non-finite or ≥ fixedPointLimit).
    let failed: UnsafeMutablePointer<Bool>

    // for each group g in the depths [0, kc): scratch = A[:, g]·B[g, :]; tile += fixed(scratch); then sums (+)= tile
    /// Adds one tile's groups (the depths of this KC block, starting at a group boundary) to the sums, noting in
    /// `check` any value that cannot be summed. Each group's product is the micro-kernel's fma chain over the group's
    /// depths from zero, so its bits are those of a GEMM over that group alone. The groups are summed in the
    /// workspace's Int64 tile (in L1), then written out once.
    @inline(__always)
    func add<Tile: GemmTile>(_: Tile.Type, kc: Int, a: UnsafePointer<Float>, aStride: Int, b: UnsafePointer<Float>,
                             bStride: Int, row: Int, column: Int, rows: Int, columns: Int, first: Bool,
                             workspace: GemmWorkspace, check: inout FixedPointRangeCheck) {
        let (tile, stride) = (workspace.fixedPointTile, Tile.columns)
        var depth = 0
        while depth < kc {
            let length = min(group, kc - depth)
            // Edge tiles' padding rows and columns come from zero-padded panels: zeros, always in range.
            Tile.fixedPointKernel(kc: length, a: a + depth * aStride, aStride: aStride, b: b + depth * bStride,
                                  bStride: bStride, tile: tile, replacing: depth == 0, check: &check)
            depth += length
        }
        for i in 0..<rows {
            let offset = (row + i) * ldSums + column
            if let floats {
                fixedPointToFloat(tile + i * stride, into: floats + offset, count: columns)
            } else if replacing && first {
                (sums + offset).update(from: tile + i * stride, count: columns)
            } else {
                addIntegers(tile + i * stride, into: sums + offset, count: columns)
            }
        }
    }
}

/// y[count] += x[count] (wrapping Int64 adds: fixed-point sums).
@inline(__always)
public func addIntegers(_ x: UnsafePointer<Int64>, into y: UnsafeMutablePointer<Int64>, count: Int) {
    var i = 0
    while i + 8 <= count {
        (SIMD8<Int64>(loadingFrom: y + i) &+ SIMD8<Int64>(loadingFrom: x + i)).store(to: y + i)
        i += 8
    }
    while i < count {
        y[i] &+= x[i]
        i += 1
    }
}

// weightSums[out×in] (=/+=) Σ_g fixed(dy_gᵀ·x_g);  biasSums[out] (=/+=) Σ_g fixed(Σ_{r∈g} dy[r, :])
/// Deterministic mode's parameter gradients of `batch` rows: for every group of `group` consecutive rows (the last
/// may be short), the group's dW and db — the bits `denseWeightGradient` gives for those rows alone — rounded to
/// fixed point (as `accumulateFixedPoint`) and added into `weightSums` [out×in] and `biasSums` [out], which the first
/// group overwrites when `replacing`. One GEMM over all rows. Returns false if any group's value is non-finite or
/// ≥ `fixedPointLimit` in magnitude. `group` must be at most `fixedPointGemmMaximumGroup`.
///
/// With `weightGradient` (and `replacing`: these rows are all there is to sum), dW is also written there as Float
/// (`fixedPointToFloat` of the sums); `weightSums` is then scratch, unused when all rows fit one GEMM depth block.
public func denseWeightGradientFixedPoint(
    outputGradient dy: UnsafePointer<Float>, input x: UnsafePointer<Float>,
    weightSums: UnsafeMutablePointer<Int64>, biasSums: UnsafeMutablePointer<Int64>,
    batch: Int, group: Int, inputWidth: Int, outputWidth: Int, threads: Int, replacing: Bool,
    weightGradient: UnsafeMutablePointer<Float>? = nil, variant: KernelVariant = .active
) -> Bool {
    precondition(group >= 1 && group <= fixedPointGemmMaximumGroup, "fixed-point group \(group) out of range")
    precondition(weightGradient == nil || replacing, "a Float weight gradient needs replacing sums")
    guard batch > 0 else {
        if replacing {
            weightSums.update(repeating: 0, count: outputWidth * inputWidth)
            biasSums.update(repeating: 0, count: outputWidth)
        }
        weightGradient?.update(repeating: 0, count: outputWidth * inputWidth)
        return true
    }
    var check = FixedPointRangeCheck()
    // db: per group, its rows added in order, eight outputs at a time (the bits of denseWeightGradient's row sum).
    var start = 0
    while start < batch {
        let rows = start..<min(batch, start + group)
        forEachVector(in: 0..<outputWidth, as: SIMD8<Float>.self) { o, lanes in
            var sum = SIMD8<Float>()
            for r in rows { sum += lanes.load(dy + r * outputWidth + o) }
            withUnsafeBytes(of: sum) { bytes in
                accumulateFixedPointRow(bytes.baseAddress!.assumingMemoryBound(to: Float.self), into: biasSums + o,
                                        count: lanes.count, replacing: replacing && start == 0, check: &check)
            }
        }
        start = rows.upperBound
    }
    guard outputWidth > 0 && inputWidth > 0 else { return check.isSummable }
    return withUnsafeTemporaryAllocation(of: Bool.self, capacity: max(1, threads)) { failed in
        failed.initialize(repeating: false)
        // dW[out×in] = dy[batch×out]ᵀ · x[batch×in], summed by groups of rows (the GEMM's k)
        var operands = GemmOperands(
            transposeA: true, transposeB: false, m: outputWidth, n: inputWidth, k: batch, alpha: 1,
            a: dy, lda: outputWidth, b: x, ldb: inputWidth, beta: 0, c: UnsafeMutablePointer(mutating: dy), ldc: inputWidth)
        // All rows in one depth block: each tile's sums are complete in its epilogue, which converts them itself.
        let direct = batch <= group * max(1, gemmKC / group) ? weightGradient : nil
        operands.fixedPoint = FixedPointEpilogue(sums: weightSums, ldSums: inputWidth, group: group, replacing: replacing,
                                                 floats: direct, failed: failed.baseAddress!)
        variant.run(GemmCall(operands: operands, threads: threads))
        if let weightGradient, direct == nil {
            fixedPointToFloat(weightSums, into: weightGradient, count: outputWidth * inputWidth)
        }
        return check.isSummable && !failed.contains(true)
    }
}

/// Naive reference for `denseWeightGradientFixedPoint`: `denseWeightGradient` on each group alone, then
/// `accumulateFixedPoint` of its dW and db.
public func denseWeightGradientFixedPointReference(
    outputGradient dy: UnsafePointer<Float>, input x: UnsafePointer<Float>,
    weightSums: UnsafeMutablePointer<Int64>, biasSums: UnsafeMutablePointer<Int64>,
    batch: Int, group: Int, inputWidth: Int, outputWidth: Int, replacing: Bool, variant: KernelVariant = .active
) -> Bool {
    var weight = [Float](repeating: 0, count: outputWidth * inputWidth), bias = [Float](repeating: 0, count: outputWidth)
    if replacing {
        weightSums.update(repeating: 0, count: weight.count)
        biasSums.update(repeating: 0, count: bias.count)
    }
    var summable = true
    var start = 0
    while start < batch {
        let rows = min(group, batch - start)
        denseWeightGradient(outputGradient: dy + start * outputWidth, input: x + start * inputWidth,
                            weightGradient: &weight, biasGradient: &bias, batch: rows, inputWidth: inputWidth,
                            outputWidth: outputWidth, threads: 1, variant: variant)
        summable = accumulateFixedPoint(weight, into: weightSums, count: weight.count) && summable
        summable = accumulateFixedPoint(bias, into: biasSums, count: bias.count) && summable
        start += rows
    }
    return summable
}
