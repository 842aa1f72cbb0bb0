import Foundation
import XCTest
@testable import NeuralNet

/// Inverted dropout: its masks against the one-element definition, their statistics, the identity in evaluation,
/// independence from how rows are split into passes and threads, and its backward against finite differences.
final class DropoutTests: XCTestCase {
    /// One identity layer whose outputs are dropped at `rate`: training outputs are evaluation outputs ⊙ mask.
    private func singleLayer(width: Int, inputWidth: Int = 6, rate: Float, threads: Int = 1) -> Network {
        let network = Network(inputWidth: inputWidth, layers: [(width, .identity)], dropout: [rate], threads: threads)
        network.initialize(weights: .xavierUniform, biasValue: 0.25, seed: 4)
        return network
    }

    private func inputs(rows: Int, width: Int, seed: UInt64 = 8) -> [Float] {
        var generator = SplitMix64(seed: seed)
        return (0..<(rows * width)).map { _ in Float(generator.nextNormal()) }
    }

    private func run(_ network: Network, _ input: [Float], rows: Int, pass: TrainingPass?) -> [Float] {
        input.withUnsafeBufferPointer {
            Array(UnsafeBufferPointer(start: network.forward(input: $0.baseAddress!, batch: rows, pass: pass),
                                      count: rows * network.outputWidth))
        }
    }

    /// Every element is kept exactly when `Dropout.keeps` (the reference) says so, and then scaled by 1/(1 − p).
    func testMaskFollowsTheReferenceOnEveryThreadCount() {
        let rows = 37, width = 70, rate: Float = 0.3
        let pass = TrainingPass(seed: 12, step: 5, firstSample: 40)
        let input = inputs(rows: rows, width: 6)
        for threads in [1, 2] {
            let network = singleLayer(width: width, rate: rate, threads: threads)
            let evaluation = run(network, input, rows: rows, pass: nil)
            let training = run(network, input, rows: rows, pass: pass)
            let scale = Float(1 / (1 - Double(rate)))
            for row in 0..<rows {
                for unit in 0..<width {
                    let kept = Dropout.keeps(seed: 12, step: 5, sample: 40 + row, layer: 0, unit: unit, rate: rate)
                    XCTAssertEqual(training[row * width + unit], kept ? evaluation[row * width + unit] * scale : 0,
                                   "threads \(threads), row \(row), unit \(unit)")
                }
            }
        }
    }

    /// The kept fraction is 1 − p, units and rows are independent, masks change with the step, the seed and the
    /// layer, and the scaled outputs keep their expectation.
    func testMaskStatistics() {
        let rows = 512, width = 512
        for rate: Float in [0.1, 0.5, 0.8] {
            var kept = 0, neighbours = 0, nextRow = 0, otherStep = 0, otherSeed = 0, otherLayer = 0
            for row in 0..<rows {
                for unit in 0..<width {
                    let keeps = Dropout.keeps(seed: 3, step: 9, sample: row, layer: 1, unit: unit, rate: rate)
                    guard keeps else { continue }
                    kept += 1
                    if unit + 1 < width, Dropout.keeps(seed: 3, step: 9, sample: row, layer: 1, unit: unit + 1, rate: rate) { neighbours += 1 }
                    if Dropout.keeps(seed: 3, step: 9, sample: row + 1, layer: 1, unit: unit, rate: rate) { nextRow += 1 }
                    if Dropout.keeps(seed: 3, step: 10, sample: row, layer: 1, unit: unit, rate: rate) { otherStep += 1 }
                    if Dropout.keeps(seed: 4, step: 9, sample: row, layer: 1, unit: unit, rate: rate) { otherSeed += 1 }
                    if Dropout.keeps(seed: 3, step: 9, sample: row, layer: 2, unit: unit, rate: rate) { otherLayer += 1 }
                }
            }
            let total = Double(rows * width), keep = 1 - Double(rate)
            // Binomial standard deviation of the kept fraction: at most 0.5/sqrt(262144) ≈ 0.001; allow 4 of them.
            XCTAssertEqual(Double(kept) / total, keep, accuracy: 0.004, "rate \(rate)")
            // Given a kept element, another element is kept with probability 1 − p if the two are independent
            // (at least 52000 kept elements: a standard deviation of at most 0.0022; allow 4).
            for (name, count) in [("next unit", neighbours), ("next row", nextRow), ("next step", otherStep),
                                  ("other seed", otherSeed), ("other layer", otherLayer)] {
                XCTAssertEqual(Double(count) / Double(kept), keep, accuracy: 0.009, "rate \(rate): \(name)")
            }
        }
        // Expectation: the mean of the training outputs over many rows matches evaluation's.
        let rows2 = 2000, network = singleLayer(width: 16, rate: 0.5)
        let input = inputs(rows: rows2, width: 6, seed: 21)
        let evaluation = run(network, input, rows: rows2, pass: nil)
        let training = run(network, input, rows: rows2, pass: TrainingPass(seed: 1, step: 0, firstSample: 0))
        let evaluationMean = evaluation.map(Double.init).reduce(0, +) / Double(evaluation.count)
        let trainingMean = training.map(Double.init).reduce(0, +) / Double(training.count)
        XCTAssertEqual(trainingMean, evaluationMean, accuracy: 0.03)
        XCTAssertEqual(training.filter { $0 == 0 }.count, training.count / 2, accuracy: training.count / 50)
    }

    /// Without a training pass dropout is the identity: the same outputs as the network without dropout.
    func testEvaluationIsTheIdentity() {
        let layers: [(units: Int, activation: Activation)] = [(20, .relu), (12, .tanh), (3, .identity)]
        let plain = Network(inputWidth: 6, layers: layers)
        let dropping = Network(inputWidth: 6, layers: layers, dropout: [0.5, 0.2, 0.1])
        plain.initialize(weights: .heUniform, biasValue: 0.1, seed: 2)
        dropping.initialize(weights: .heUniform, biasValue: 0.1, seed: 2)
        let input = inputs(rows: 9, width: 6)
        let expected = run(plain, input, rows: 9, pass: nil)
        XCTAssertEqual(run(dropping, input, rows: 9, pass: nil), expected)
        // A training pass after it changes the outputs; evaluation afterwards is the identity again.
        XCTAssertNotEqual(run(dropping, input, rows: 9, pass: TrainingPass(seed: 0, step: 0, firstSample: 0)), expected)
        XCTAssertEqual(run(dropping, input, rows: 9, pass: nil), expected)
        // A rate of 0 drops nothing even in training.
        XCTAssertEqual(run(Network(inputWidth: 6, layers: layers, dropout: [0, 0, 0]).initialized(seed: 2), input, rows: 9,
                           pass: TrainingPass(seed: 0, step: 0, firstSample: 0)), expected)
    }

    /// A sample's mask depends on its position in the global batch, not on which pass (rank) computes it.
    func testRowsSplitIntoPassesGetTheSameMasks() {
        let network = Network(inputWidth: 6, layers: [(24, .gelu), (10, .identity)], dropout: [0.4, 0.25])
        network.initialize(weights: .heUniform, biasValue: 0, seed: 6)
        let rows = 11, input = inputs(rows: rows, width: 6)
        let whole = run(network, input, rows: rows, pass: TrainingPass(seed: 5, step: 3, firstSample: 0))
        let head = run(network, Array(input[0..<(4 * 6)]), rows: 4, pass: TrainingPass(seed: 5, step: 3, firstSample: 0))
        let tail = run(network, Array(input[(4 * 6)...]), rows: 7, pass: TrainingPass(seed: 5, step: 3, firstSample: 4))
        XCTAssertEqual(head + tail, whole)
    }

    /// Backward through dropout (with the same pass's masks) against central differences of the training loss, and
    /// back-propagating in groups (`rowOffset`) against the whole batch.
    func testBackwardThroughDropoutMatchesFiniteDifferences() {
        let batch = 6, inputWidth = 5
        for activation in [Activation.tanh, .sigmoid, .gelu] {
            let network = Network(inputWidth: inputWidth, layers: [(8, activation), (7, activation), (3, .identity)],
                                  dropout: [0.3, 0.5, 0.2])
            network.initialize(weights: .xavierNormal, biasValue: 0.1, seed: 3)
            let pass = TrainingPass(seed: 17, step: 2, firstSample: 0)
            let input = inputs(rows: batch, width: inputWidth, seed: 30)
            let labels: [Float] = (0..<batch).map { Float($0 % 3) }
            func meanLoss() -> Double {
                let outputs = input.withUnsafeBufferPointer { network.forward(input: $0.baseAddress!, batch: batch, pass: pass) }
                return Loss.crossEntropy.evaluate(outputs: outputs, targets: labels, batch: batch, width: 3, gradient: nil,
                                                  gradientScale: 0).lossSum / Double(batch)
            }
            var outputGradient = [Float](repeating: 0, count: batch * 3)
            let prediction = input.withUnsafeBufferPointer { network.forward(input: $0.baseAddress!, batch: batch, pass: pass) }
            _ = outputGradient.withUnsafeMutableBufferPointer {
                Loss.crossEntropy.evaluate(outputs: prediction, targets: labels, batch: batch, width: 3, gradient: $0.baseAddress!,
                                           gradientScale: 1 / Float(batch))
            }
            input.withUnsafeBufferPointer { x in
                outputGradient.withUnsafeBufferPointer { network.backward(input: x.baseAddress!, outputGradient: $0.baseAddress!, batch: batch) }
            }
            let analytic = Array(network.gradients)
            // The same gradient from two groups of rows, summed.
            var grouped = [Float](repeating: 0, count: network.parameterCount)
            input.withUnsafeBufferPointer { x in
                outputGradient.withUnsafeBufferPointer { dy in
                    for (start, count) in [(0, 4), (4, 2)] {
                        network.backward(input: x.baseAddress! + start * inputWidth, outputGradient: dy.baseAddress! + start * 3,
                                         batch: count, rowOffset: start)
                        for i in 0..<network.parameterCount { grouped[i] += network.gradients[i] }
                    }
                }
            }
            for (a, b) in zip(analytic, grouped) { XCTAssertEqual(a, b, accuracy: 1e-6 * max(1, abs(a)), "\(activation)") }
            let epsilon: Float = 1e-2
            for index in 0..<network.parameterCount {
                let original = network.parameters[index]
                network.parameters[index] = original + epsilon
                let plus = meanLoss()
                network.parameters[index] = original - epsilon
                let minus = meanLoss()
                network.parameters[index] = original
                let numeric = (plus - minus) / Double(2 * epsilon)
                XCTAssertEqual(Double(analytic[index]), numeric, accuracy: 2e-3 + 2e-2 * abs(numeric),
                               "\(activation): parameter \(index)")
            }
            // Dropped units get no gradient: some first-layer weight rows (units dropped in every row) may be zero,
            // and the gradient differs from the one without dropout.
            let plain = Network(inputWidth: inputWidth, layers: [(8, activation), (7, activation), (3, .identity)])
            plain.initialize(weights: .xavierNormal, biasValue: 0.1, seed: 3)
            input.withUnsafeBufferPointer { x in
                plain.forward(input: x.baseAddress!, batch: batch, pass: pass)
                outputGradient.withUnsafeBufferPointer { plain.backward(input: x.baseAddress!, outputGradient: $0.baseAddress!, batch: batch) }
            }
            XCTAssertNotEqual(Array(plain.gradients), analytic)
        }
    }
}

private extension Network {
    /// The network initialised as the tests above do, for one-expression use.
    func initialized(seed: UInt64) -> Network {
        initialize(weights: .heUniform, biasValue: 0.1, seed: seed)
        return self
    }
}
