import Kernels
import XCTest

final class FixedPointTests: XCTestCase {
    /// The vector path (with its magic-number rounding) agrees with plain rounding, element by element.
    func testAgreesWithReference() {
        var generator = SystemRandomNumberGenerator()
        let values: [Float] = (0..<1001).map { index in
            let magnitude = Float.random(in: -30...10, using: &generator)
            return (index % 2 == 0 ? 1 : -1) * Float(exp2(Double(magnitude)))
        } + [0, -0, 1e-13, 2047.9, -2047.9, 0.5, 1.5]
        var accumulator = [Int64](repeating: 7, count: values.count)
        XCTAssertTrue(accumulateFixedPoint(values, into: &accumulator, count: values.count, threads: 2))
        for (index, value) in values.enumerated() {
            XCTAssertEqual(accumulator[index], 7 + fixedPointReference(value), "value \(value)")
        }
    }

    /// `replacing` overwrites instead of adding.
    func testReplacingOverwrites() {
        let values: [Float] = (0..<23).map { Float($0) * 0.37 - 4 }
        var accumulator = [Int64](repeating: 123_456, count: 23)
        XCTAssertTrue(accumulateFixedPoint(values, into: &accumulator, count: 23, threads: 1, replacing: true))
        XCTAssertEqual(accumulator, values.map(fixedPointReference))
    }

    /// Integer sums: any grouping and order of the same contributions gives the same bits.
    func testOrderIndependent() {
        var generator = SystemRandomNumberGenerator()
        let contributions: [[Float]] = (0..<24).map { _ in (0..<37).map { _ in Float.random(in: -3...3, using: &generator) } }
        func total(_ order: [Int], threads: Int) -> [Float] {
            var accumulator = [Int64](repeating: 0, count: 37)
            for index in order { XCTAssertTrue(accumulateFixedPoint(contributions[index], into: &accumulator, count: 37, threads: threads)) }
            var result = [Float](repeating: 0, count: 37)
            fixedPointToFloat(accumulator, into: &result, count: 37)
            return result
        }
        let forward = total(Array(0..<24), threads: 1)
        XCTAssertEqual(forward, total(Array((0..<24).reversed()), threads: 2))
        XCTAssertEqual(forward, total(Array(0..<24).shuffled(using: &generator), threads: 1))
        // Float summation of the same values does depend on the order (so the property is not trivial).
        let floatForward = (0..<37).map { j in contributions.reduce(Float(0)) { $0 + $1[j] } }
        let floatBackward = (0..<37).map { j in contributions.reversed().reduce(Float(0)) { $0 + $1[j] } }
        XCTAssertNotEqual(floatForward, floatBackward)
    }

    /// Values outside the headroom and non-finite values are reported, never folded in silently.
    func testDetectsOverflowAndNonFinite() {
        for bad: Float in [2048, -5000, .infinity, .nan] {
            var accumulator = [Int64](repeating: 0, count: 20)
            var values = [Float](repeating: 1, count: 20)
            values[13] = bad
            XCTAssertFalse(accumulateFixedPoint(values, into: &accumulator, count: 20, threads: 1), "\(bad)")
            values[13] = 1
            values[18] = bad // index 18 of 19 is handled by the scalar tail
            XCTAssertFalse(accumulateFixedPoint(values, into: &accumulator, count: 19, threads: 1), "\(bad) in the tail")
        }
    }
    /// The vectorized conversion back to Float gives the reference's bits, across the 2^51 fast-path bound too.
    func testFixedPointToFloatMatchesReference() {
        var random = SeededGenerator(seed: 11)
        var values: [Int64] = (0..<1001).map { _ in Int64(Double(random.next()) * 1e14) }
        values += [0, 1, -1, (1 << 51) - 1, -(1 << 51) + 1, 1 << 51, -(1 << 51), 1 << 60, -(1 << 62), Int64.max, Int64.min + 1]
        var fast = [Float](repeating: .nan, count: values.count), reference = fast
        fixedPointToFloat(values, into: &fast, count: values.count)
        fixedPointToFloatReference(values, into: &reference, count: values.count)
        XCTAssertEqual(fast.map(\.bitPattern), reference.map(\.bitPattern))
    }
}

