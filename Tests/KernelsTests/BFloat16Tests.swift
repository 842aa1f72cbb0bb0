import Kernels
import XCTest

final class BFloat16Tests: XCTestCase {
    /// Naive reference: the nearer of the two bfloat16 neighbours (ties to the even one), NaN stays NaN.
    func reference(_ value: Float) -> UInt16 {
        if value.isNaN { return 0x7FC0 }
        let low = value.bitPattern & 0xFFFF_0000, high = low &+ 0x1_0000
        // Past the largest finite bfloat16 the next step up is 2^128 (where IEEE rounding overflows to infinity).
        let below = Double(Float(bitPattern: low))
        let above = high & 0x7FFF_FFFF == 0x7F80_0000 ? (value < 0 ? -0x1p128 : 0x1p128) : Double(Float(bitPattern: high))
        let distanceLow = abs(Double(value) - below), distanceHigh = abs(Double(value) - above)
        if value.bitPattern & 0xFFFF == 0 { return UInt16(low >> 16) }
        if value.bitPattern & 0xFFFF == 0x8000 { return UInt16(((low >> 16) & 1 == 0 ? low : high) >> 16) }
        return UInt16((distanceLow < distanceHigh ? low : high) >> 16)
    }

    func testConversionMatchesReferenceAndRoundTrips() {
        var generator = SystemRandomNumberGenerator()
        var values: [Float] = [0, -0, 1, -1, .infinity, -.infinity, .nan, .greatestFiniteMagnitude, .leastNonzeroMagnitude,
                               Float(bitPattern: 0x3F80_8000), Float(bitPattern: 0x3F81_8000), Float(bitPattern: 0x3F80_8001)]
        for _ in 0..<4000 { values.append(Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &generator))) }
        var half = [UInt16](repeating: 0, count: values.count)
        convertToBFloat16(values, &half, count: values.count)
        for (value, bits) in zip(values, half) {
            XCTAssertEqual(bits, bfloat16Bits(value), "vector vs scalar for \(value)")
            if value.isNaN {
                XCTAssertTrue(floatFromBFloat16(bits).isNaN)
            } else {
                XCTAssertEqual(bits, reference(value), "\(value) (bits \(String(value.bitPattern, radix: 16)))")
            }
        }
        var back = [Float](repeating: 0, count: values.count)
        convertFromBFloat16(half, &back, count: values.count)
        for (value, widened) in zip(values, back) where value.isFinite && abs(value) < 1e38 && abs(value) > 1e-37 {
            XCTAssertLessThanOrEqual(abs(widened - value), abs(value) / 256, "\(value)")
        }
    }

    func testSumRoundsOnce() {
        let x: [UInt16] = [bfloat16Bits(1), bfloat16Bits(0.5), bfloat16Bits(-3)]
        var y: [UInt16] = [bfloat16Bits(2), bfloat16Bits(0.25), bfloat16Bits(3)]
        addBFloat16(x, into: &y, count: 3)
        XCTAssertEqual(y.map(floatFromBFloat16), [3, 0.75, 0])
    }
}
