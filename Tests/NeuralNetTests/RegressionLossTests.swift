import Foundation
import XCTest
@testable import NeuralNet

/// Multi-target mse, l1, huber and multi-label binary cross-entropy: values and gradients as PyTorch computes them,
/// and gradients against central differences of the loss itself.
final class RegressionLossTests: XCTestCase {
    // Two rows of three outputs; errors include 0 (L1's kink), exactly δ = 1 and exactly δ = 0.5 (Huber's joints).
    let outputs: [Float] = [0.5, 2.0, -1.0, 0.0, 3.0, 1.5]
    let targets: [Float] = [1.0, -1.0, -1.0, 0.25, 2.0, 4.0]

    private func evaluate(_ loss: LossOptions, _ outputs: [Float], _ targets: [Float], batch: Int,
                          gradientScale: Float = 0) -> (totals: Loss.BatchTotals, gradient: [Float]) {
        var gradient = [Float](repeating: .nan, count: outputs.count)
        let totals = gradient.withUnsafeMutableBufferPointer { gradientBuffer in
            loss.evaluate(outputs: outputs, targets: targets, batch: batch, width: outputs.count / batch,
                          gradient: gradientBuffer.baseAddress!, gradientScale: gradientScale)
        }
        return (totals, gradient)
    }

    /// Values and gradients from PyTorch 2.15 in float64: `F.mse_loss(y, t)`, `F.l1_loss`, `F.huber_loss(y, t, delta=δ)`,
    /// then `.backward()` (mean reduction over all 6 elements).
    func testRegressionLossesMatchPyTorch() {
        let cases: [(LossOptions, Double, [Double])] = [
            (LossOptions(kind: .meanSquaredError), 2.7604166666666665,
             [-0.16666666666666666, 1.0, 0.0, -0.08333333333333333, 0.3333333333333333, -0.8333333333333333]),
            (LossOptions(kind: .meanAbsoluteError), 1.2083333333333333,
             [-0.16666666666666666, 0.16666666666666666, 0.0, -0.16666666666666666, 0.16666666666666666, -0.16666666666666666]),
            (LossOptions(kind: .huber), 0.859375,
             [-0.08333333333333333, 0.16666666666666666, 0.0, -0.041666666666666664, 0.16666666666666666, -0.16666666666666666]),
            (LossOptions(kind: .huber, delta: 0.5), 0.5052083333333334,
             [-0.08333333333333333, 0.08333333333333333, 0.0, -0.041666666666666664, 0.08333333333333333, -0.08333333333333333]),
            (LossOptions(kind: .huber, delta: 2.5), 1.359375,
             [-0.08333333333333333, 0.41666666666666663, 0.0, -0.041666666666666664, 0.16666666666666666, -0.41666666666666663]),
        ]
        for (loss, expectedLoss, expectedGradient) in cases {
            let result = evaluate(loss, outputs, targets, batch: 2, gradientScale: 1 / 2)
            XCTAssertEqual(result.totals.lossSum / 2, expectedLoss, accuracy: 1e-6, "\(loss)")
            XCTAssertEqual(result.totals.correct, 0, "\(loss): regression counts nothing as correct")
            for (got, expected) in zip(result.gradient, expectedGradient) {
                XCTAssertEqual(Double(got), expected, accuracy: 1e-7, "\(loss) gradient")
            }
        }
    }

    /// `F.binary_cross_entropy_with_logits(z, t)` over 2 rows of 3 labels, and its gradient (PyTorch 2.15, float64);
    /// `correct` counts rows with every label right.
    func testMultiLabelBinaryCrossEntropyMatchesPyTorch() {
        let logits: [Float] = [0.5, -2, 3, 1, -0.5, 0.1]
        let labels: [Float] = [1, 0, 1, 0, 0, 1]
        let result = evaluate(LossOptions(kind: .binaryCrossEntropy), logits, labels, batch: 2, gradientScale: 1 / 2)
        XCTAssertEqual(result.totals.lossSum / 2, 0.513554613094787, accuracy: 1e-6)
        let expected = [-0.0629234447996909, 0.019867153670352924, -0.007904312196261106, 0.12184309643833414,
                        0.0629234447996909, -0.07917013542017666]
        for (got, value) in zip(result.gradient, expected) { XCTAssertEqual(Double(got), value, accuracy: 1e-7) }
        XCTAssertEqual(result.totals.correct, 1, "row 0 has every label right, row 1 gets label 0 wrong")
    }

    /// With one output per row the multi-output forms are the single-target losses they replace.
    func testOneOutputIsTheSingleTargetLoss() {
        let mse = evaluate(LossOptions(kind: .meanSquaredError), [0.5, 2], [1, -1], batch: 2)
        XCTAssertEqual(mse.totals.lossSum / 2, 4.625, accuracy: 1e-6)
        let bce = evaluate(LossOptions(kind: .binaryCrossEntropy), [0.5, -2], [1, 0], batch: 2)
        XCTAssertEqual(bce.totals.lossSum / 2, (0.47407698 + 0.12692801) / 2, accuracy: 1e-6)
        XCTAssertEqual(bce.totals.correct, 2)
    }

    /// Every loss's gradient against central differences of its own value, away from L1's kink.
    func testGradientsMatchFiniteDifferences() {
        var generator = SplitMix64(seed: 7)
        let batch = 4, width = 3
        let settings = [LossOptions(kind: .meanSquaredError), LossOptions(kind: .meanAbsoluteError),
                        LossOptions(kind: .huber), LossOptions(kind: .huber, delta: 0.3), LossOptions(kind: .huber, delta: 2.5),
                        LossOptions(kind: .binaryCrossEntropy)]
        for loss in settings {
            let outputs = (0..<(batch * width)).map { _ in Float(2 * generator.nextNormal()) }
            let targets = (0..<(batch * width)).map { index -> Float in
                loss.kind == .binaryCrossEntropy ? Float(index % 2) : Float(generator.nextNormal())
            }
            let analytic = evaluate(loss, outputs, targets, batch: batch, gradientScale: 1 / Float(batch)).gradient
            for index in outputs.indices {
                let epsilon: Float = 1e-3
                if loss.kind == .meanAbsoluteError, abs(outputs[index] - targets[index]) < 2 * epsilon { continue }
                var shifted = outputs
                shifted[index] = outputs[index] + epsilon
                let plus = evaluate(loss, shifted, targets, batch: batch).totals.lossSum / Double(batch)
                shifted[index] = outputs[index] - epsilon
                let minus = evaluate(loss, shifted, targets, batch: batch).totals.lossSum / Double(batch)
                let numeric = (plus - minus) / Double(2 * epsilon)
                XCTAssertEqual(Double(analytic[index]), numeric, accuracy: 2e-4, "\(loss) output \(index)")
            }
        }
    }
}
