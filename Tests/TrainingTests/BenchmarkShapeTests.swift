@testable import Benchmarks
import XCTest

/// The products `bench gemm` times and `bench step` counts FLOPs of.
final class BenchmarkShapeTests: XCTestCase {
    /// Per layer a forward and a weight-gradient product, and an input gradient for every layer but the first: per
    /// row 6·Σ(in·out) − 2·in₀·out₀ FLOPs.
    func testTrainingShapesCountEveryProductOfAStep() {
        let widths = [784, 256, 128, 10], batch = 37
        let shapes = GemmShape.trainingShapes(widths: widths, batch: batch)
        XCTAssertEqual(shapes.count, 3 * 3 - 1)
        XCTAssertEqual(shapes.filter { $0.product == .inputGradient }.map(\.n), [256, 128])
        let flops = shapes.map(\.flops).reduce(0, +)
        XCTAssertEqual(flops, Double(batch) * Double(6 * (784 * 256 + 256 * 128 + 128 * 10) - 2 * 784 * 256))
        XCTAssertEqual(GemmShape.peak.flops, 2 * 1024 * 1024 * 1024)
    }
}
