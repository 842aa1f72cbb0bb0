// The three matrix products of a dense layer (in fp32, or bf16 products with fp32 sums), with naive references.

/// Dense forward pass y = x·Wᵀ + b for x [batch×inputWidth], W [outputWidth×inputWidth], y [batch×outputWidth].
public func denseForward(
    input x: UnsafePointer<Float>, weight w: UnsafePointer<Float>, bias b: UnsafePointer<Float>,
    output y: UnsafeMutablePointer<Float>, batch: Int, inputWidth: Int, outputWidth: Int, threads: Int,
    variant: KernelVariant = .active, precision: MatrixPrecision = .fp32
) {
    // y[batch×out] = x[batch×in] · W[out×in]ᵀ + b[out]
    guard batch > 0 && outputWidth > 0 else { return }
    // Seed every row of y with the bias, then accumulate the product onto it (beta = 1).
    for row in 0..<batch {
        (y + row * outputWidth).update(from: b, count: outputWidth)
    }
    gemm(transposeA: false, transposeB: true, m: batch, n: outputWidth, k: inputWidth, alpha: 1,
         a: x, lda: inputWidth, b: w, ldb: inputWidth, beta: 1, c: y, ldc: outputWidth, threads: threads,
         variant: variant, precision: precision)
}

/// Dense input gradient dx = dy·W for dy [batch×outputWidth], W [outputWidth×inputWidth], dx [batch×inputWidth].
public func denseInputGradient(
    outputGradient dy: UnsafePointer<Float>, weight w: UnsafePointer<Float>,
    inputGradient dx: UnsafeMutablePointer<Float>, batch: Int, inputWidth: Int, outputWidth: Int, threads: Int,
    variant: KernelVariant = .active, precision: MatrixPrecision = .fp32
) {
    // dx[batch×in] = dy[batch×out] · W[out×in]
    gemm(transposeA: false, transposeB: false, m: batch, n: inputWidth, k: outputWidth, alpha: 1,
         a: dy, lda: outputWidth, b: w, ldb: inputWidth, beta: 0, c: dx, ldc: inputWidth, threads: threads,
         variant: variant, precision: precision)
}

/// Dense parameter gradients dW = dyᵀ·x and db = Σ_batch dy (both overwritten; zeros when batch is 0), or with
/// `accumulatingWeights` dW += dyᵀ·x (db still overwritten).
public func denseWeightGradient(
    outputGradient dy: UnsafePointer<Float>, input x: UnsafePointer<Float>,
    weightGradient dw: UnsafeMutablePointer<Float>, biasGradient db: UnsafeMutablePointer<Float>,
    batch: Int, inputWidth: Int, outputWidth: Int, threads: Int, variant: KernelVariant = .active,
    precision: MatrixPrecision = .fp32, accumulatingWeights: Bool = false
) {
    // dW[out×in] (+)= dy[batch×out]ᵀ · x[batch×in]
    gemm(transposeA: true, transposeB: false, m: outputWidth, n: inputWidth, k: batch, alpha: 1,
         a: dy, lda: outputWidth, b: x, ldb: inputWidth, beta: accumulatingWeights ? 1 : 0, c: dw, ldc: inputWidth, threads: threads,
         variant: variant, precision: precision)
    // db[out] = Σ_r dy[r, :], summed in row order.
    db.update(repeating: 0, count: outputWidth)
    for row in 0..<batch {
        addProduct(dy + row * outputWidth, scaledBy: 1, to: db, count: outputWidth, threads: 1, variant: variant)
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
