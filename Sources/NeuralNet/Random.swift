import Foundation

/// SplitMix64: a tiny seeded generator whose stream is the same on every platform and every rank.
public struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    /// Starts the stream at `seed`.
    public init(seed: UInt64) { state = seed }

    /// A generator for an independent sub-stream, e.g. one per layer or per epoch.
    public init(seed: UInt64, stream: UInt64) {
        var mixer = SplitMix64(seed: seed ^ (stream &* 0xD1B5_4A32_D192_ED03))
        state = mixer.next() ^ (stream &+ 0x632B_E59B_D9B4_E019)
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= SplitMix64.increment
        return SplitMix64.mix(state)
    }

    /// The step between successive states (the golden ratio in 64 bits).
    public static let increment: UInt64 = 0x9E37_79B9_7F4A_7C15

    /// SplitMix64's output function: 64 well-mixed bits of `value` (a counter-based generator when fed a counter).
    @inline(__always)
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform Double in [0, 1) from the top 53 bits.
    public mutating func nextUnitDouble() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// A uniform integer in 0..<bound, unbiased (Lemire's multiply-and-reject), the same on every platform.
    public mutating func nextIndex(below bound: Int) -> Int {
        precondition(bound > 0)
        let range = UInt64(bound)
        var product = next().multipliedFullWidth(by: range)
        if product.low < range {
            let threshold = (0 &- range) % range
            while product.low < threshold { product = next().multipliedFullWidth(by: range) }
        }
        return Int(product.high)
    }

    /// A standard normal sample (Box–Muller, computed in Double and rounded once to Float by the caller).
    public mutating func nextNormal() -> Double {
        let u1 = 1.0 - nextUnitDouble() // (0, 1]
        let u2 = nextUnitDouble()
        return (-2.0 * Foundation.log(u1)).squareRoot() * Foundation.cos(2.0 * Double.pi * u2)
    }
}

/// The permutation of 0..<count used for one epoch: identical on every rank for the same seed and epoch.
public func epochPermutation(count: Int, seed: UInt64, epoch: Int) -> [Int32] {
    seededPermutation(count: count, seed: seed, stream: 0x5348_5546_0000_0000 | UInt64(epoch))
}

/// A permutation of 0..<count drawn from (`seed`, `stream`) alone: the same on every rank and platform.
public func seededPermutation(count: Int, seed: UInt64, stream: UInt64) -> [Int32] {
    var order = (0..<count).map { Int32($0) }
    var generator = SplitMix64(seed: seed, stream: stream)
    // Fisher–Yates from the end, with unbiased bounded draws.
    var index = count - 1
    while index > 0 {
        let other = generator.nextIndex(below: index + 1)
        order.swapAt(index, other)
        index -= 1
    }
    return order
}
