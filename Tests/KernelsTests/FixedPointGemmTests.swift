import Kernels
import XCTest

/// Deterministic mode's fused weight gradient: one GEMM whose epilogue sums each group in fixed point.
final class FixedPointGemmTests: XCTestCase {
    /// Bit for bit the sums of `denseWeightGradient` run on each group alone, for every variant, thread count, group
    /// size (including a short last group and groups that split a GEMM depth block) and edge-tile shape.
    func testAgreesWithOneGemmPerGroup() {
        var generator = SeededGenerator(seed: 41)
        let shapes: [(batch: Int, input: Int, output: Int, group: Int)] = [
            (128, 784, 256, 32), (128, 256, 128, 32), (128, 128, 10, 32), (100, 37, 13, 7), (300, 50, 29, 100),
            (520, 33, 40, 256), (5, 17, 3, 32), (64, 1, 1, 1), (97, 300, 70, 24),
        ]
        for shape in shapes {
            let dy = generator.array(shape.batch * shape.output), x = generator.array(shape.batch * shape.input)
            for variant in KernelVariant.supported {
                for replacing in [true, false] {
                    var expectedWeights = [Int64](repeating: 5, count: shape.output * shape.input)
                    var expectedBiases = [Int64](repeating: -3, count: shape.output)
                    XCTAssertTrue(denseWeightGradientFixedPointReference(
                        outputGradient: dy, input: x, weightSums: &expectedWeights, biasSums: &expectedBiases,
                        batch: shape.batch, group: shape.group, inputWidth: shape.input, outputWidth: shape.output,
                        replacing: replacing, variant: variant))
                    for threads in [1, 2, 3] {
                        var weights = [Int64](repeating: 5, count: expectedWeights.count)
                        var biases = [Int64](repeating: -3, count: expectedBiases.count)
                        XCTAssertTrue(denseWeightGradientFixedPoint(
                            outputGradient: dy, input: x, weightSums: &weights, biasSums: &biases, batch: shape.batch,
                            group: shape.group, inputWidth: shape.input, outputWidth: shape.output, threads: threads,
                            replacing: replacing, variant: variant))
                        let label = "\(shape) \(variant) replacing \(replacing) threads \(threads)"
                        XCTAssertEqual(weights, expectedWeights, label)
                        XCTAssertEqual(biases, expectedBiases, label)
                        guard replacing else { continue }
                        // The Float gradient straight from the epilogue (or from the sums when rows span blocks).
                        var gradient = [Float](repeating: .nan, count: expectedWeights.count)
                        var expectedGradient = gradient
                        fixedPointToFloat(expectedWeights, into: &expectedGradient, count: gradient.count)
                        XCTAssertTrue(denseWeightGradientFixedPoint(
                            outputGradient: dy, input: x, weightSums: &weights, biasSums: &biases, batch: shape.batch,
                            group: shape.group, inputWidth: shape.input, outputWidth: shape.output, threads: threads,
                            replacing: true, weightGradient: &gradient, variant: variant))
                        XCTAssertEqual(gradient.map(\.bitPattern), expectedGradient.map(\.bitPattern), label + " as Float")
                        XCTAssertEqual(biases, expectedBiases, label + " as Float")
                    }
                }
            }
        }
    }

    /// The sums differ from a float sum of the whole batch (so the groups are really summed separately), and the
    /// reference itself agrees with the plain one-group dense product.
    func testGroupsAreSummedSeparately() {
        var generator = SeededGenerator(seed: 5)
        let (batch, input, output) = (96, 40, 24)
        let dy = generator.array(batch * output), x = generator.array(batch * input)
        var weights = [Int64](repeating: 0, count: output * input), biases = [Int64](repeating: 0, count: output)
        XCTAssertTrue(denseWeightGradientFixedPoint(outputGradient: dy, input: x, weightSums: &weights, biasSums: &biases,
                                                    batch: batch, group: 32, inputWidth: input, outputWidth: output,
                                                    threads: 1, replacing: true))
        var wholeWeights = [Int64](repeating: 0, count: output * input), wholeBiases = [Int64](repeating: 0, count: output)
        XCTAssertTrue(denseWeightGradientFixedPoint(outputGradient: dy, input: x, weightSums: &wholeWeights,
                                                    biasSums: &wholeBiases, batch: batch, group: batch, inputWidth: input,
                                                    outputWidth: output, threads: 1, replacing: true))
        XCTAssertNotEqual(weights, wholeWeights)
        var floatWeights = [Float](repeating: 0, count: output * input), floatBiases = [Float](repeating: 0, count: output)
        denseWeightGradient(outputGradient: dy, input: x, weightGradient: &floatWeights, biasGradient: &floatBiases,
                            batch: batch, inputWidth: input, outputWidth: output, threads: 1)
        XCTAssertEqual(wholeWeights, floatWeights.map(fixedPointReference))
        XCTAssertEqual(wholeBiases, floatBiases.map(fixedPointReference))
    }

    /// A non-finite or too large value in any group's product is reported, in the weights and in the biases.
    func testReportsValuesItCannotSum() {
        let (batch, input, output) = (40, 20, 12)
        for (row, column, value) in [(35, 3, Float.nan), (2, 19, 30000), (17, 0, -Float.infinity)] {
            var x = [Float](repeating: 0.5, count: batch * input), dy = [Float](repeating: 0.25, count: batch * output)
            x[row * input + column] = value
            var weights = [Int64](repeating: 0, count: output * input), biases = [Int64](repeating: 0, count: output)
            XCTAssertFalse(denseWeightGradientFixedPoint(outputGradient: dy, input: x, weightSums: &weights,
                                                         biasSums: &biases, batch: batch, group: 8, inputWidth: input,
                                                         outputWidth: output, threads: 2, replacing: true), "x \(value)")
            x[row * input + column] = 0.5
            dy[row * output + 11] = value
            XCTAssertFalse(denseWeightGradientFixedPoint(outputGradient: dy, input: x, weightSums: &weights,
                                                         biasSums: &biases, batch: batch, group: 8, inputWidth: input,
                                                         outputWidth: output, threads: 1, replacing: true), "dy \(value)")
        }
    }
}
