import Kernels
import XCTest
@testable import NeuralNet

/// Runs `body` with each kernel variant this build and CPU support selected, then restores the previous one.
func forEachSupportedKernelVariant(_ body: (KernelVariant) throws -> Void) throws {
    let before = KernelVariant.active
    defer { try? KernelVariant.select(before) }
    for variant in KernelVariant.supported {
        try KernelVariant.select(variant)
        try body(variant)
    }
}

final class ActivationVariantTests: XCTestCase {
    /// Forward and backward of every activation give the same bits in every supported variant, at lengths that leave
    /// partial vectors of both widths and split across threads.
    func testActivationsGiveTheSameBitsInEveryVariant() throws {
        var state: UInt64 = 99
        func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state) >> 40) / Float(1 << 19)  // about [-16, 16)
        }
        for count in [1, 9, 23, 40_007] {
            let z = (0..<count).map { _ in next() }, upstream = (0..<count).map { _ in next() }
            for activation in Activation.allCases {
                var results: [[UInt32]] = []
                try forEachSupportedKernelVariant { _ in
                    for threads in [1, 2] {
                        var a = [Float](repeating: .nan, count: count), dz = a
                        activation.forward(z, &a, count: count, threads: threads)
                        activation.backward(z: z, a: a, outputGradient: upstream, inputGradient: &dz, count: count,
                                            threads: threads)
                        results.append((a + dz).map(\.bitPattern))
                    }
                }
                for result in results.dropFirst() { XCTAssertEqual(result, results[0], "\(activation) count \(count)") }
            }
        }
    }
}
