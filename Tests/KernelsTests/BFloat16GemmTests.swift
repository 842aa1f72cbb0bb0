import XCTest
import Kernels

/// The bf16 GEMM (vdpbf16ps) against the naive reference over bf16-rounded operands with fp32 sums.
final class BFloat16GemmTests: XCTestCase {
    private func requireBFloat16() throws {
        if let missing = MatrixPrecision.bf16.missingFeature {
            throw XCTSkip("bf16 products: this CPU (\(MatrixPrecision.cpuModel)) \(missing)")
        }
    }

    // Odd and ragged shapes, every transpose pair (training uses NT forward, NN input gradient, TN weight gradient;
    // the narrow-C path turns them into the others), beta 0 and 1, depths past one KC block and odd depths.
    func testMatchesReferenceOnOddShapesAndEveryTranspose() throws {
        try requireBFloat16()
        var generator = SeededGenerator(seed: 16)
        let shapes = [(1, 1, 1), (13, 33, 7), (12, 32, 64), (25, 70, 301), (130, 10, 257), (7, 200, 33), (40, 45, 512)]
        for (m, n, k) in shapes {
            for (transposeA, transposeB) in [(false, false), (false, true), (true, false), (true, true)] {
                for beta: Float in [0, 1] {
                    let a = generator.array(m * k), b = generator.array(k * n), c0 = generator.array(m * n)
                    let lda = transposeA ? m : k, ldb = transposeB ? k : n
                    var fast = c0, reference = c0
                    for threads in [1, 2] {
                        fast = c0
                        gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 1, a: a, lda: lda,
                             b: b, ldb: ldb, beta: beta, c: &fast, ldc: n, threads: threads, precision: .bf16)
                    }
                    gemmReference(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 1, a: a,
                                  lda: lda, b: b, ldb: ldb, beta: beta, c: &reference, ldc: n, threads: 1, precision: .bf16)
                    // Both sum the same exact products of values below 1 in fp32, in different orders: each partial
                    // sum is off by at most half an ulp of a value ≤ k.
                    let tolerance = Float(k) * Float(k).ulp * 0.5 + 1e-6
                    let worst = zip(fast, reference).map { abs($0 - $1) }.max()!
                    XCTAssertLessThanOrEqual(worst, tolerance, "m \(m) n \(n) k \(k) tA \(transposeA) tB \(transposeB) beta \(beta)")
                    // Not the fp32 product: the rounding to bf16 shows.
                    if k >= 64 {
                        var exact = c0
                        gemmReference(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 1, a: a,
                                      lda: lda, b: b, ldb: ldb, beta: beta, c: &exact, ldc: n, threads: 1)
                        XCTAssertGreaterThan(zip(fast, exact).map { abs($0 - $1) }.max()!, tolerance)
                    }
                }
            }
        }
    }

    // Each element's bits do not depend on the thread count or on how many rows C has (the rows a rank gets).
    func testBitsIndependentOfThreadsAndRows() throws {
        try requireBFloat16()
        var generator = SeededGenerator(seed: 17)
        let (m, n, k) = (50, 90, 300)
        let a = generator.array(m * k), b = generator.array(n * k)
        var whole = [Float](repeating: 0, count: m * n)
        gemm(transposeA: false, transposeB: true, m: m, n: n, k: k, alpha: 1, a: a, lda: k, b: b, ldb: k, beta: 0,
             c: &whole, ldc: n, threads: 1, precision: .bf16)
        for (rows, threads) in [(50, 2), (7, 1), (13, 2)] {
            var part = [Float](repeating: 0, count: rows * n)
            gemm(transposeA: false, transposeB: true, m: rows, n: n, k: k, alpha: 1, a: a, lda: k, b: b, ldb: k, beta: 0,
                 c: &part, ldc: n, threads: threads, precision: .bf16)
            XCTAssertEqual(part, Array(whole[0..<(rows * n)]), "\(rows) rows, \(threads) threads")
        }
    }
}
