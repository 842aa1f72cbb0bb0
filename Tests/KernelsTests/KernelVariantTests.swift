import XCTest
import Kernels

/// Every kernel variant gives the same bits as every other (each is checked against the naive references in
/// GemmTests and VectorMathTests). Variants a build cannot use efficiently still run here: in a build without
/// AVX-512 the 16-lane code runs as pairs of 8-lane operations.
final class KernelVariantTests: XCTestCase {
    func testSelectionAndEnvironment() throws {
        XCTAssertTrue(KernelVariant.buildRunsOnThisCPU)
        XCTAssertEqual(KernelVariant.supported.first, .avx2, "the 8-lane kernels run wherever the build runs")
        XCTAssertEqual(KernelVariant.supported, KernelVariant.supported.sorted())
        XCTAssertEqual(try KernelVariant.requested(environment: [:]), KernelVariant.supported.last)
        XCTAssertEqual(try KernelVariant.requested(environment: ["PLEXUS_KERNEL": "auto"]), KernelVariant.supported.last)
        XCTAssertEqual(try KernelVariant.requested(environment: ["PLEXUS_KERNEL": "avx2"]), .avx2)
        XCTAssertThrowsError(try KernelVariant.requested(environment: ["PLEXUS_KERNEL": "sse"])) { error in
            XCTAssertEqual("\(error)", "PLEXUS_KERNEL=sse: expected auto, avx2 or avx512")
        }
        if KernelVariant.supported.contains(.avx512) {
            XCTAssertEqual(try KernelVariant.requested(environment: ["PLEXUS_KERNEL": "avx512"]), .avx512)
        } else {
            XCTAssertThrowsError(try KernelVariant.requested(environment: ["PLEXUS_KERNEL": "avx512"]))
            XCTAssertThrowsError(try KernelVariant.select(.avx512))
        }
        let before = KernelVariant.active
        defer { try? KernelVariant.select(before) }
        for variant in KernelVariant.supported {
            try KernelVariant.select(variant)
            XCTAssertEqual(KernelVariant.active, variant)
        }
        XCTAssertLessThan(KernelVariant.avx2, KernelVariant.avx512)
        XCTAssertEqual(KernelVariant.avx512.lanes, 16)
        XCTAssertEqual(KernelVariant.allCases.map { KernelVariant(lanes: $0.lanes) }, KernelVariant.allCases)
        XCTAssertNil(KernelVariant(lanes: 4))
        XCTAssertEqual(KernelVariant.avx512.tile.rows, 12)
    }

    /// Every product of a training step of both benchmark nets (batch 128 and 64), odd shapes and edge tiles,
    /// every layout, alpha/beta, 1 and 2 threads: the wide variant's bits equal the narrow one's.
    func testGemmVariantsGiveTheSameBits() {
        var shapes: [(m: Int, n: Int, k: Int)] = [(1, 1, 1), (7, 13, 5), (13, 33, 257), (25, 65, 600), (128, 10, 40),
                                                   (10, 128, 64), (128, 64, 10), (37, 100, 300)]
        for batch in [64, 128] {
            for widths in [[784, 256, 128, 10], [784, 512, 256, 10]] {
                for (input, output) in zip(widths, widths.dropFirst()) {
                    shapes += [(batch, output, input), (batch, input, output), (output, input, batch)]
                }
            }
        }
        var random = SeededGenerator(seed: 5)
        for (index, shape) in shapes.enumerated() {
            let (m, n, k) = shape
            let transposeA = index % 2 == 1, transposeB = index % 4 >= 2
            let (alpha, beta): (Float, Float) = index % 3 == 0 ? (1, 0) : (index % 3 == 1 ? (1, 1) : (0.5, -1.5))
            let a = random.array(m * k), b = random.array(k * n), initial = random.array(m * n)
            var results: [[UInt32]] = []
            for variant in KernelVariant.allCases {
                for threads in [1, 2] {
                    var c = initial
                    gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                         a: a, lda: transposeA ? m : k, b: b, ldb: transposeB ? k : n, beta: beta, c: &c, ldc: n,
                         threads: threads, variant: variant)
                    results.append(c.map(\.bitPattern))
                }
            }
            for (position, result) in results.enumerated().dropFirst() {
                XCTAssertEqual(result, results[0], "\(m)×\(n)×\(k) tA=\(transposeA) tB=\(transposeB), result \(position)")
            }
        }
    }

    func testDenseProductsGiveTheSameBitsInEveryVariant() {
        let (batch, input, output) = (50, 70, 10)
        var random = SeededGenerator(seed: 9)
        let x = random.array(batch * input), w = random.array(output * input), bias = random.array(output)
        let dy = random.array(batch * output)
        var results: [[UInt32]] = []
        for variant in KernelVariant.allCases {
            var y = [Float](repeating: 0, count: batch * output), dx = [Float](repeating: 0, count: batch * input)
            var dw = [Float](repeating: 0, count: output * input), db = [Float](repeating: 0, count: output)
            denseForward(input: x, weight: w, bias: bias, output: &y, batch: batch, inputWidth: input,
                         outputWidth: output, threads: 2, variant: variant)
            denseInputGradient(outputGradient: dy, weight: w, inputGradient: &dx, batch: batch, inputWidth: input,
                               outputWidth: output, threads: 2, variant: variant)
            denseWeightGradient(outputGradient: dy, input: x, weightGradient: &dw, biasGradient: &db, batch: batch,
                                inputWidth: input, outputWidth: output, threads: 2, variant: variant)
            results.append((y + dx + dw + db).map(\.bitPattern))
        }
        XCTAssertEqual(results[1], results[0])
    }

    /// The elementwise helpers at every length around the vector widths, in every variant and thread count.
    func testElementwiseHelpersGiveTheSameBits() {
        for count in [0, 1, 7, 8, 15, 16, 17, 31, 33, 40_001] {
            var random = SeededGenerator(seed: UInt64(count + 11))
            let x = random.array(count), y = random.array(count)
            var results: [[UInt32]] = []
            for variant in KernelVariant.allCases {
                for threads in [1, 2] {
                    var scaled = x, sum = y
                    scale(&scaled, count: count, by: 0.3, threads: threads, variant: variant)
                    addProduct(x, scaledBy: -1.7, to: &sum, count: count, threads: threads, variant: variant)
                    results.append((scaled + sum).map(\.bitPattern))
                }
            }
            for result in results.dropFirst() { XCTAssertEqual(result, results[0], "count \(count)") }
        }
    }

    /// Transcendental functions lane by lane: a 16-lane vector gives the bits of two 8-lane ones.
    func testVectorMathIsLaneWise() {
        var random = SeededGenerator(seed: 17)
        for _ in 0..<500 {
            var wide = SIMD16<Float>()
            for lane in 0..<16 { wide[lane] = random.next() * 40 }
            wide[3] = .nan; wide[9] = .infinity; wide[12] = 0
            func same(_ name: String, _ f16: (SIMD16<Float>) -> SIMD16<Float>, _ f8: (SIMD8<Float>) -> SIMD8<Float>) {
                let result = f16(wide), low = f8(wide.lowHalf), high = f8(wide.highHalf)
                for lane in 0..<16 {
                    XCTAssertEqual(result[lane].bitPattern, (lane < 8 ? low[lane] : high[lane - 8]).bitPattern,
                                   "\(name)(\(wide[lane]))")
                }
            }
            same("exp", vectorExp, vectorExp)
            same("log", { vectorLog($0.replacing(with: -$0, where: $0 .< 0)) },
                 { vectorLog($0.replacing(with: -$0, where: $0 .< 0)) })
            same("tanh", vectorTanh, vectorTanh)
            same("sigmoid", vectorSigmoid, vectorSigmoid)
            same("erf", vectorErf, vectorErf)
            same("sqrt", { vectorSquareRoot($0.replacing(with: -$0, where: $0 .< 0)) },
                 { vectorSquareRoot($0.replacing(with: -$0, where: $0 .< 0)) })
        }
    }

    func testPartialVectorLoadsAndStores() {
        let values: [Float] = (0..<16).map { Float($0) + 1 }
        values.withUnsafeBufferPointer { source in
            let v = SIMD16<Float>(loadingFrom: source.baseAddress!, count: 5)
            XCTAssertEqual(Array(0..<16).map { v[$0] }, [1, 2, 3, 4, 5] + [Float](repeating: 0, count: 11))
            var destination = [Float](repeating: -1, count: 16)
            v.store(to: &destination, count: 3)
            XCTAssertEqual(destination, [1, 2, 3] + [Float](repeating: -1, count: 13))
        }
    }
}
