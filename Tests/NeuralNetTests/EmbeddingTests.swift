import Foundation
import XCTest
@testable import NeuralNet

/// The embedding stage: the tables sit first in the flat buffers, a lookup is the table's row for the code (the
/// same outputs as a plain network fed the looked-up rows), and every table entry's gradient (a scatter-add over rows
/// that share a level) matches central differences.
final class EmbeddingTests: XCTestCase {
    // Inputs per row: 2 plain values, then the codes of "a" (4 levels × 3) and "b" (2 levels × 2).
    let tables = [(name: "a", levels: 4, dimension: 3), (name: "b", levels: 2, dimension: 2)]
    let batch = 6

    func rows(_ generator: inout SplitMix64) -> [Float] {
        (0..<batch).flatMap { row -> [Float] in
            // Codes repeat over rows (a: 0 1 2 0 1 2, b: 0 1 0 1 0 1), so table rows collect several rows' gradients.
            [Float(generator.nextNormal()), Float(generator.nextNormal()), Float(row % 3), Float(row % 2)]
        }
    }

    func testTablesComeFirstAndFeedTheFirstLayer() {
        let network = Network(inputWidth: 4, layers: [(5, .tanh), (3, .identity)], embeddings: tables)
        XCTAssertEqual(network.embeddings.map(\.offset), [0, 12])
        XCTAssertEqual(network.embeddingParameters, 0..<16)
        XCTAssertEqual(network.layers[0].inputWidth, 2 + 3 + 2)
        XCTAssertEqual(network.layers[0].weightOffset, 16)
        XCTAssertEqual(network.parameterCount, 16 + 5 * 7 + 5 + 3 * 5 + 3)
        XCTAssertEqual(network.parameterLayers.first, ParameterLayer(weights: 0..<12, biases: 0..<0))
    }

    /// The outputs of a plain network with the same layers, fed [plain inputs, table_a[code_a], table_b[code_b]].
    func testLookupGivesThePlainNetworkOfTheLookedUpRows() {
        var generator = SplitMix64(seed: 11)
        let network = Network(inputWidth: 4, layers: [(5, .tanh), (3, .identity)], embeddings: tables)
        network.initialize(weights: .xavierNormal, biasValue: 0.1, seed: 9)
        let input = rows(&generator)
        let plain = Network(inputWidth: 7, layers: [(5, .tanh), (3, .identity)])
        let dense = network.parameterCount - 16
        for i in 0..<dense { plain.parameters[i] = network.parameters[16 + i] }
        let table = Array(network.parameters[0..<16])
        let looked = (0..<batch).flatMap { row -> [Float] in
            let x = Array(input[(row * 4)..<(row * 4 + 4)]), a = Int(x[2]), b = Int(x[3])
            return Array(x[0..<2]) + Array(table[(a * 3)..<(a * 3 + 3)]) + Array(table[(12 + b * 2)..<(12 + b * 2 + 2)])
        }
        let expected = Array(UnsafeBufferPointer(start: looked.withUnsafeBufferPointer { plain.forward(input: $0.baseAddress!, batch: batch) },
                                                 count: batch * 3))
        let actual = Array(UnsafeBufferPointer(start: input.withUnsafeBufferPointer { network.forward(input: $0.baseAddress!, batch: batch) },
                                               count: batch * 3))
        XCTAssertEqual(actual, expected)
    }

    func testInitializationIsStandardNormalAndSeeded() {
        let wide = [(name: "z", levels: 500, dimension: 8)]
        let first = Network(inputWidth: 3, layers: [(4, .relu)], embeddings: wide)
        let second = Network(inputWidth: 3, layers: [(4, .relu)], embeddings: wide)
        first.initialize(weights: .heUniform, biasValue: 0, seed: 5)
        second.initialize(weights: .heUniform, biasValue: 0, seed: 5)
        XCTAssertEqual(Array(first.parameters), Array(second.parameters))
        let values = first.parameters[0..<4000].map(Double.init)
        let mean = values.reduce(0, +) / 4000
        let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 3999
        XCTAssertEqual(mean, 0, accuracy: 0.05)
        XCTAssertEqual(variance, 1, accuracy: 0.07)
    }

    final class DefaultListener: BackwardListener {}

    /// Every table entry and every weight and bias against central differences of the mean cross-entropy, with and
    /// without a listener, on 1 and 2 threads.
    func testBackwardMatchesFiniteDifferences() {
        var generator = SplitMix64(seed: 4)
        for threads in [1, 2] {
            for listener in [nil, DefaultListener()] as [BackwardListener?] {
                let network = Network(inputWidth: 4, layers: [(5, .tanh), (3, .identity)], embeddings: tables, threads: threads)
                network.initialize(weights: .xavierNormal, biasValue: 0.1, seed: 3)
                let input = rows(&generator), labels = (0..<batch).map { Float($0 % 3) }
                func meanLoss(gradient: UnsafeMutablePointer<Float>?) -> Double {
                    let outputs = input.withUnsafeBufferPointer { network.forward(input: $0.baseAddress!, batch: batch) }
                    return labels.withUnsafeBufferPointer {
                        Loss.crossEntropy.evaluate(outputs: outputs, targets: $0.baseAddress!, batch: batch, width: 3,
                                                   gradient: gradient, gradientScale: 1 / Float(batch)).lossSum / Double(batch)
                    }
                }
                var outputGradient = [Float](repeating: 0, count: batch * 3)
                _ = outputGradient.withUnsafeMutableBufferPointer { meanLoss(gradient: $0.baseAddress!) }
                network.gradients.update(repeating: .nan)  // backward must overwrite every entry
                input.withUnsafeBufferPointer { x in
                    outputGradient.withUnsafeBufferPointer {
                        network.backward(input: x.baseAddress!, outputGradient: $0.baseAddress!, batch: batch, listener: listener)
                    }
                }
                let analytic = Array(network.gradients)
                let epsilon: Float = 1e-2
                for index in 0..<network.parameterCount {
                    let original = network.parameters[index]
                    network.parameters[index] = original + epsilon
                    let plus = meanLoss(gradient: nil)
                    network.parameters[index] = original - epsilon
                    let minus = meanLoss(gradient: nil)
                    network.parameters[index] = original
                    let numeric = (plus - minus) / Double(2 * epsilon)
                    XCTAssertEqual(Double(analytic[index]), numeric, accuracy: 1e-3 + 1e-2 * abs(numeric),
                                   "threads \(threads), listener \(listener != nil): parameter \(index)")
                }
                // Level 3 of "a" is in no row: its gradient is zero, not left over.
                XCTAssertEqual(Array(analytic[9..<12]), [0, 0, 0])
            }
        }
    }
}
