import XCTest
import Kernels

/// Deterministic pseudo-random floats in [-1, 1) so failures reproduce.
struct SeededGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }
    mutating func next() -> Float {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return Float(state >> 40) / Float(1 << 23) - 1
    }
    mutating func array(_ count: Int) -> [Float] { (0..<count).map { _ in next() } }
}

final class ThreadingTests: XCTestCase {
    func testAvailableCPUCountIsPositive() {
        XCTAssertGreaterThanOrEqual(availableCPUCount(), 1)
    }

    func testChunkRangeCoversEverythingOnce() {
        for total in [0, 1, 5, 16, 17, 100] {
            for parts in 1...7 {
                var next = 0
                for index in 0..<parts {
                    let range = chunkRange(index, of: parts, total: total)
                    XCTAssertEqual(range.lowerBound, next)
                    XCTAssertLessThanOrEqual(range.count, total / parts + 1)
                    XCTAssertGreaterThanOrEqual(range.count, total / parts)
                    next = range.upperBound
                }
                XCTAssertEqual(next, total)
            }
        }
    }

    /// With a granule, the chunks cover everything once and start at its multiples: the granule-1 chunks of the
    /// granules, each ×granule, the last cut at the total.
    func testChunkRangeCutsAtMultiplesOfTheGranule() {
        for total in [0, 1, 5, 16, 17, 100, 1_000] {
            for parts in 1...7 {
                for granule in [1, 8, 16] {
                    var next = 0
                    for index in 0..<parts {
                        let range = chunkRange(index, of: parts, total: total, granule: granule)
                        let units = chunkRange(index, of: parts, total: (total + granule - 1) / granule)
                        XCTAssertEqual(range, min(total, units.lowerBound * granule)..<min(total, units.upperBound * granule))
                        XCTAssertEqual(range.lowerBound, next)
                        XCTAssertTrue(range.lowerBound % granule == 0 || range.isEmpty)
                        next = range.upperBound
                    }
                    XCTAssertEqual(next, total, "total \(total), parts \(parts), granule \(granule)")
                }
            }
        }
    }

    private struct CountVisits: ParallelJob, ChunkJob {
        let counts: UnsafeMutablePointer<Int>
        func perform(_ index: Int) { counts[index] += 1 }
        func perform<V: FloatVector>(_ range: Range<Int>, as _: V.Type) { for index in range { counts[index] += 1 } }
    }

    func testParallelForVisitsEachIndexOnce() {
        for threads in [1, 2, 4] {
            let counts = UnsafeMutablePointer<Int>.allocate(capacity: 37)
            defer { counts.deallocate() }
            counts.initialize(repeating: 0, count: 37)
            parallelFor(count: 37, threads: threads) { counts[$0] += 1 }
            XCTAssertEqual((0..<37).map { counts[$0] }, [Int](repeating: 1, count: 37), "closure, \(threads) threads")
            counts.initialize(repeating: 0, count: 37)
            parallelFor(count: 37, threads: threads, CountVisits(counts: counts))
            XCTAssertEqual((0..<37).map { counts[$0] }, [Int](repeating: 1, count: 37), "job, \(threads) threads")
        }
    }

    func testForEachChunkCoversEveryElementOnce() {
        for (count, threads, minimumChunk) in [(0, 2, 1), (5, 3, 1), (1000, 3, 16), (1000, 2, 10_000)] {
            let counts = UnsafeMutablePointer<Int>.allocate(capacity: max(1, count))
            defer { counts.deallocate() }
            counts.initialize(repeating: 0, count: max(1, count))
            forEachChunk(count: count, threads: threads, minimumChunk: minimumChunk, CountVisits(counts: counts))
            XCTAssertEqual((0..<count).map { counts[$0] }, [Int](repeating: 1, count: count), "count \(count)")
        }
    }
}

final class GemmTests: XCTestCase {
    /// Runs gemm and gemmReference on the same inputs and checks agreement within a k-scaled bound.
    private func check(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float, beta: Float,
                       padding: Int = 0, threads: Int = 2, seed: UInt64 = 1,
                       file: StaticString = #filePath, line: UInt = #line) {
        for variant in KernelVariant.allCases {
            check(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, beta: beta,
                  padding: padding, threads: threads, seed: seed, variant: variant, file: file, line: line)
        }
    }

    /// `check` for one kernel variant.
    private func check(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float, beta: Float,
                       padding: Int, threads: Int, seed: UInt64, variant: KernelVariant,
                       file: StaticString, line: UInt) {
        var random = SeededGenerator(seed: seed)
        let (rowsA, columnsA) = transposeA ? (k, m) : (m, k)
        let (rowsB, columnsB) = transposeB ? (n, k) : (k, n)
        let lda = columnsA + padding, ldb = columnsB + padding, ldc = n + padding
        let a = random.array(max(1, rowsA * lda))
        let b = random.array(max(1, rowsB * ldb))
        var initial = random.array(max(1, m * ldc))
        if beta == 0 {
            // beta = 0 must ignore C entirely, NaN included.
            for i in 0..<m { for j in 0..<n { initial[i * ldc + j] = .nan } }
        }
        var fast = initial
        var reference = initial
        gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
             a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: &fast, ldc: ldc, threads: threads, variant: variant)
        gemmReference(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                      a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: &reference, ldc: ldc, threads: 1)
        var worst: Float = 0
        for i in 0..<m {
            for j in 0..<ldc {
                let index = i * ldc + j
                if j >= n {
                    // Padding columns of C must be untouched.
                    XCTAssertEqual(fast[index].bitPattern, initial[index].bitPattern, file: file, line: line)
                    continue
                }
                // Error bound: (k + 2) roundings of magnitude Σ|a·b| (inputs are in [-1, 1]).
                let magnitude = abs(alpha) * Float(k) + (beta == 0 ? 0 : abs(beta))
                let tolerance = Float(k + 2) * Float.ulpOfOne * max(magnitude, 1)
                let error = abs(fast[index] - reference[index])
                XCTAssertFalse(fast[index].isNaN, "NaN at (\(i), \(j))", file: file, line: line)
                worst = max(worst, error / tolerance)
            }
        }
        XCTAssertLessThanOrEqual(worst, 1, "m=\(m) n=\(n) k=\(k) tA=\(transposeA) tB=\(transposeB) \(variant)",
                                 file: file, line: line)
    }

    func testAgreesWithReferenceForAllTransposesAndOddShapes() {
        let shapes: [(Int, Int, Int)] = [
            (1, 1, 1), (7, 13, 5), (6, 16, 8), (5, 15, 3), (12, 32, 256), (13, 17, 257),
            (65, 33, 300), (1, 40, 70), (40, 1, 70), (150, 20, 9), (3, 300, 20), (24, 64, 31), (25, 65, 12),
        ]
        for (m, n, k) in shapes {
            for transposeA in [false, true] {
                for transposeB in [false, true] {
                    check(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 1, beta: 0)
                }
            }
        }
    }

    func testAlphaBetaAndLeadingDimensions() {
        for (alpha, beta) in [(Float(1), Float(1)), (0.5, -2), (-1.5, 0), (2, 0.25)] {
            for transposeA in [false, true] {
                for transposeB in [false, true] {
                    check(transposeA: transposeA, transposeB: transposeB, m: 23, n: 37, k: 270,
                          alpha: alpha, beta: beta, padding: 5, threads: 3, seed: 7)
                }
            }
        }
    }

    /// A narrow C (output-layer logits) is computed as Cᵀ in scratch; alpha, beta and ldc must still hold.
    func testNarrowProductsThroughTheTranspose() {
        for (alpha, beta) in [(Float(1), Float(0)), (1, 1), (0.5, -2)] {
            for transposeA in [false, true] {
                for transposeB in [false, true] {
                    for (m, n, k) in [(128, 10, 256), (64, 3, 300), (31, 7, 20)] {
                        check(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                              alpha: alpha, beta: beta, padding: 3, threads: 2, seed: 11)
                    }
                }
            }
        }
    }

    func testZeroDepthScalesC() {
        var c: [Float] = [.nan, 2, 3, 4]
        gemm(transposeA: false, transposeB: false, m: 2, n: 2, k: 0, alpha: 1, a: [0], lda: 1, b: [0], ldb: 2,
             beta: 0, c: &c, ldc: 2, threads: 1)
        XCTAssertEqual(c, [0, 0, 0, 0])
        c = [1, 2, 3, 4]
        gemm(transposeA: false, transposeB: false, m: 2, n: 2, k: 0, alpha: 1, a: [0], lda: 1, b: [0], ldb: 2,
             beta: 2, c: &c, ldc: 2, threads: 1)
        XCTAssertEqual(c, [2, 4, 6, 8])
    }

    /// C[i, j] must not depend on threads, m, n, tile position or how op(A)/op(B) are stored, in any variant.
    func testBitwiseDeterminism() {
        for variant in KernelVariant.allCases { checkBitwiseDeterminism(variant) }
    }

    private func checkBitwiseDeterminism(_ variant: KernelVariant) {
        let m = 50, n = 70, k = 600  // k spans three KC blocks; m and n leave edge tiles
        var random = SeededGenerator(seed: 42)
        let a = random.array(m * k)
        let b = random.array(k * n)
        let transposedA = (0..<(k * m)).map { a[($0 % m) * k + $0 / m] }  // k×m
        let transposedB = (0..<(n * k)).map { b[($0 % k) * n + $0 / k] }  // n×k

        var full = [Float](repeating: 0, count: m * n)
        gemm(transposeA: false, transposeB: false, m: m, n: n, k: k, alpha: 1,
             a: a, lda: k, b: b, ldb: n, beta: 0, c: &full, ldc: n, threads: 1, variant: variant)

        for threads in [1, 2, 3] {
            var other = [Float](repeating: .nan, count: m * n)
            gemm(transposeA: true, transposeB: true, m: m, n: n, k: k, alpha: 1,
                 a: transposedA, lda: m, b: transposedB, ldb: k, beta: 0, c: &other, ldc: n, threads: threads,
                 variant: variant)
            XCTAssertEqual(other.map(\.bitPattern), full.map(\.bitPattern), "threads \(threads), transposed, \(variant)")
            gemm(transposeA: false, transposeB: true, m: m, n: n, k: k, alpha: 1,
                 a: a, lda: k, b: transposedB, ldb: k, beta: 0, c: &other, ldc: n, threads: threads, variant: variant)
            XCTAssertEqual(other.map(\.bitPattern), full.map(\.bitPattern), "threads \(threads), B transposed, \(variant)")
        }
        // Sub-blocks of C starting at every row/column offset within a tile, of several sizes.
        for (rowStart, rows, columnStart, columns) in [(0, 1, 0, 1), (17, 1, 3, 50), (5, 13, 1, 17), (11, 39, 9, 61), (44, 6, 54, 16),
                                                                  (2, 48, 7, 10), (1, 49, 60, 3)] {
            var block = [Float](repeating: .nan, count: rows * columns)
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    gemm(transposeA: false, transposeB: false, m: rows, n: columns, k: k, alpha: 1,
                         a: ap.baseAddress! + rowStart * k, lda: k, b: bp.baseAddress! + columnStart, ldb: n,
                         beta: 0, c: &block, ldc: columns, threads: 2, variant: variant)
                }
            }
            for i in 0..<rows {
                for j in 0..<columns {
                    XCTAssertEqual(block[i * columns + j].bitPattern, full[(rowStart + i) * n + columnStart + j].bitPattern,
                                   "element (\(rowStart + i), \(columnStart + j)) in a \(rows)×\(columns) block, \(variant)")
                }
            }
        }
    }
}

final class DenseTests: XCTestCase {
    private func assertClose(_ x: [Float], _ y: [Float], tolerance: Float, _ message: String,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(x.count, y.count, file: file, line: line)
        let worst = zip(x, y).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, tolerance, message, file: file, line: line)
    }

    func testDenseProductsAgreeWithReferences() {
        for variant in KernelVariant.allCases {
            for (batch, input, output) in [(1, 1, 1), (7, 13, 5), (33, 70, 19), (128, 40, 10)] {
                checkDenseProducts(batch: batch, input: input, output: output, variant: variant)
            }
        }
    }

    private func checkDenseProducts(batch: Int, input: Int, output: Int, variant: KernelVariant) {
        var random = SeededGenerator(seed: UInt64(batch * 1000 + input))
        let x = random.array(batch * input)
        let w = random.array(output * input)
        let bias = random.array(output)
        let dy = random.array(batch * output)
        let tolerance = Float(max(input, output, batch) + 2) * 2 * Float.ulpOfOne * Float(max(input, output, batch))

        var y = [Float](repeating: .nan, count: batch * output), yReference = y
        denseForward(input: x, weight: w, bias: bias, output: &y, batch: batch, inputWidth: input,
                     outputWidth: output, threads: 2, variant: variant)
        denseForwardReference(input: x, weight: w, bias: bias, output: &yReference, batch: batch,
                              inputWidth: input, outputWidth: output)
        assertClose(y, yReference, tolerance: tolerance, "forward \(batch) \(input) \(output) \(variant)")

        var dx = [Float](repeating: .nan, count: batch * input), dxReference = dx
        denseInputGradient(outputGradient: dy, weight: w, inputGradient: &dx, batch: batch, inputWidth: input,
                           outputWidth: output, threads: 2, variant: variant)
        denseInputGradientReference(outputGradient: dy, weight: w, inputGradient: &dxReference, batch: batch,
                                    inputWidth: input, outputWidth: output)
        assertClose(dx, dxReference, tolerance: tolerance, "input gradient \(batch) \(input) \(output) \(variant)")

        var dw = [Float](repeating: .nan, count: output * input), dwReference = dw
        var db = [Float](repeating: .nan, count: output), dbReference = db
        denseWeightGradient(outputGradient: dy, input: x, weightGradient: &dw, biasGradient: &db, batch: batch,
                            inputWidth: input, outputWidth: output, threads: 2, variant: variant)
        denseWeightGradientReference(outputGradient: dy, input: x, weightGradient: &dwReference,
                                     biasGradient: &dbReference, batch: batch, inputWidth: input,
                                     outputWidth: output)
        assertClose(dw, dwReference, tolerance: tolerance, "weight gradient \(batch) \(input) \(output) \(variant)")
        // Bias gradient sums in the same order as the reference: exact.
        XCTAssertEqual(db, dbReference)
    }

    func testEmptyBatchWritesZeroGradients() {
        var dw = [Float](repeating: .nan, count: 6)
        var db = [Float](repeating: .nan, count: 2)
        denseWeightGradient(outputGradient: [0], input: [0], weightGradient: &dw, biasGradient: &db, batch: 0,
                            inputWidth: 3, outputWidth: 2, threads: 2)
        XCTAssertEqual(dw, [0, 0, 0, 0, 0, 0])
        XCTAssertEqual(db, [0, 0])
        var y: [Float] = [5]
        denseForward(input: [0], weight: [1, 2, 3], bias: [1], output: &y, batch: 0, inputWidth: 3,
                     outputWidth: 1, threads: 2)
        XCTAssertEqual(y, [5])
    }
}
