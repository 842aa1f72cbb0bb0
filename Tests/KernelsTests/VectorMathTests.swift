import Foundation
import XCTest
import Kernels

final class VectorMathTests: XCTestCase {
    /// Sample points: a dense grid over [-limit, limit] plus log-spaced magnitudes of both signs.
    private func samples(limit: Double) -> [Float] {
        var points: [Float] = []
        let steps = 20_000
        for i in 0...steps { points.append(Float(-limit + 2 * limit * Double(i) / Double(steps))) }
        var magnitude = 1e-30
        while magnitude < limit {
            points.append(Float(magnitude))
            points.append(Float(-magnitude))
            magnitude *= 1.013
        }
        return points
    }

    /// Largest error of `vector` against the Double function `truth`, in ulps of the correctly rounded result.
    /// Errors below `absoluteFloor` count as zero (results that underflow).
    private func worstError(_ points: [Float], absoluteFloor: Double = 0,
                            vector: (SIMD8<Float>) -> SIMD8<Float>, truth: (Double) -> Double)
        -> (ulps: Double, relative: Double, at: Float)
    {
        var worst = (ulps: 0.0, relative: 0.0, at: Float(0))
        var padded = points
        while padded.count % 8 != 0 { padded.append(0) }
        for start in stride(from: 0, to: padded.count, by: 8) {
            var input = SIMD8<Float>()
            for lane in 0..<8 { input[lane] = padded[start + lane] }
            let output = vector(input)
            for lane in 0..<8 {
                let exact = truth(Double(input[lane]))
                let rounded = Float(exact)
                let got = Double(output[lane])
                if rounded.isNaN { XCTAssertTrue(output[lane].isNaN, "at \(input[lane])"); continue }
                if rounded.isInfinite { XCTAssertEqual(output[lane], rounded, "at \(input[lane])"); continue }
                let error = abs(got - exact)
                if error <= absoluteFloor { continue }
                let ulps = error / Double(max(rounded.magnitude.ulp, Float.leastNonzeroMagnitude))
                if ulps > worst.ulps {
                    worst = (ulps, exact == 0 ? 0 : error / abs(exact), input[lane])
                }
            }
        }
        return worst
    }

    private func assertAccurate(_ name: String, _ points: [Float], maximumUlps: Double, absoluteFloor: Double = 0,
                                vector: (SIMD8<Float>) -> SIMD8<Float>, truth: (Double) -> Double) {
        let worst = worstError(points, absoluteFloor: absoluteFloor, vector: vector, truth: truth)
        print("\(name): worst \(worst.ulps) ulp (relative \(worst.relative)) at \(worst.at)")
        XCTAssertLessThanOrEqual(worst.ulps, maximumUlps, "\(name) at \(worst.at)")
    }

    func testSquareRootIsCorrectlyRounded() {
        var random = SeededGenerator(seed: 5)
        for _ in 0..<1000 {
            let x = SIMD8<Float>((0..<8).map { _ in abs(random.next()) * 1e4 })
            let special = SIMD8<Float>(0, -0.0, .infinity, -1, .nan, .leastNonzeroMagnitude, .greatestFiniteMagnitude, 1)
            for value in [x, special] {
                let fast = vectorSquareRoot(value)
                for lane in 0..<8 {
                    XCTAssertEqual(fast[lane].bitPattern, value[lane].squareRoot().bitPattern, "sqrt(\(value[lane]))")
                }
            }
        }
    }

    func testExp() {
        assertAccurate("exp", samples(limit: 110), maximumUlps: 1, vector: vectorExp, truth: Foundation.exp)
        let special = vectorExp(SIMD8(-.infinity, .infinity, .nan, -200, 200, 0, 88.8, -103.99))
        XCTAssertEqual(special[0], 0)
        XCTAssertEqual(special[1], .infinity)
        XCTAssertTrue(special[2].isNaN)
        XCTAssertEqual(special[3], 0)
        XCTAssertEqual(special[4], .infinity)
        XCTAssertEqual(special[5], 1)
        XCTAssertEqual(special[6], .infinity)
        XCTAssertEqual(special[7], Foundation.exp(Float(-103.99)))
    }

    func testLog() {
        var points = samples(limit: 1e30).filter { $0 > 0 }
        points += [Float.leastNonzeroMagnitude, Float.leastNormalMagnitude / 3, Float.leastNormalMagnitude, .greatestFiniteMagnitude, 1,
                   1.0000001, 0.99999994]
        for i in 0..<2000 { points.append(0.5 + Float(i) / 1000) }
        assertAccurate("log", points, maximumUlps: 1, vector: vectorLog, truth: Foundation.log)
        let special = vectorLog(SIMD8(0, -1, .nan, .infinity, 1, -.infinity, -0.0, 2))
        XCTAssertEqual(special[0], -.infinity)
        XCTAssertTrue(special[1].isNaN)
        XCTAssertTrue(special[2].isNaN)
        XCTAssertEqual(special[3], .infinity)
        XCTAssertEqual(special[4], 0)
        XCTAssertTrue(special[5].isNaN)
        XCTAssertEqual(special[6], -.infinity)
    }

    func testTanh() {
        assertAccurate("tanh", samples(limit: 30), maximumUlps: 1.5, vector: vectorTanh, truth: Foundation.tanh)
        let special = vectorTanh(SIMD8(-.infinity, .infinity, .nan, -0.0, 0, 1e-30, 100, -100))
        XCTAssertEqual(Array(0..<8).map { special[$0] }.filter { !$0.isNaN }, [-1, 1, -0.0, 0, 1e-30, 1, -1])
        XCTAssertTrue(special[2].isNaN)
    }

    func testSigmoid() {
        assertAccurate("sigmoid", samples(limit: 120), maximumUlps: 2.5, vector: vectorSigmoid,
                       truth: { 1 / (1 + Foundation.exp(-$0)) })
        let special = vectorSigmoid(SIMD8(-.infinity, .infinity, .nan, 0, 1000, -1000, 20, -20))
        XCTAssertEqual(special[0], 0)
        XCTAssertEqual(special[1], 1)
        XCTAssertTrue(special[2].isNaN)
        XCTAssertEqual(special[3], 0.5)
        XCTAssertEqual(special[4], 1)
        XCTAssertEqual(special[5], 0)
    }

    func testErf() {
        assertAccurate("erf", samples(limit: 10), maximumUlps: 2.5, vector: vectorErf, truth: Foundation.erf)
        let special = vectorErf(SIMD8(-.infinity, .infinity, .nan, 0, -0.0, 5, -5, 1e-30))
        XCTAssertEqual(special[0], -1)
        XCTAssertEqual(special[1], 1)
        XCTAssertTrue(special[2].isNaN)
        XCTAssertEqual(special[3], 0)
        XCTAssertEqual(special[4].bitPattern, Float(-0.0).bitPattern)
        XCTAssertEqual(special[5], 1)
        XCTAssertEqual(special[6], -1)
    }
}

final class ArrayHelperTests: XCTestCase {
    func testScaleAddProductFillAndSumOfSquares() {
        for count in [0, 1, 7, 8, 9, 100, 200_003] {
            var random = SeededGenerator(seed: UInt64(count + 3))
            let x = random.array(count)
            let y = random.array(count)
            for threads in [1, 2] {
                var scaled = x
                scale(&scaled, count: count, by: 0.75, threads: threads)
                XCTAssertEqual(scaled, x.map { $0 * 0.75 })

                var sum = y
                addProduct(x, scaledBy: -1.25, to: &sum, count: count, threads: threads)
                XCTAssertEqual(sum, zip(x, y).map { $1.addingProduct(-1.25, $0) })

                var filled = x
                fill(&filled, count: count, with: 3, threads: threads)
                XCTAssertEqual(filled, [Float](repeating: 3, count: count))

                let squares = sumOfSquares(x, count: count, threads: threads)
                let expected = x.reduce(0.0) { $0 + Double($1) * Double($1) }
                XCTAssertEqual(squares, expected, accuracy: 1e-12 * max(1, expected))
                XCTAssertEqual(squares, sumOfSquares(x, count: count, threads: 1), "independent of threads")
            }
        }
    }
}
