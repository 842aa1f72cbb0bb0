import Foundation
import XCTest
@testable import NeuralNet

final class NetworkTests: XCTestCase {
    /// The textbook neuron: inputs (0.5, 0.3), weights (0.8, 0.6), bias 0.2 → z = 0.78, sigmoid(z) = 0.6856801139382539.
    func testWorkedExampleNeuron() {
        for activation in [Activation.identity, .sigmoid] {
            let network = Network(inputWidth: 2, layers: [(1, activation)])
            network.parameters[0] = 0.8
            network.parameters[1] = 0.6
            network.parameters[2] = 0.2
            let input: [Float] = [0.5, 0.3]
            let output = input.withUnsafeBufferPointer { network.forward(input: $0.baseAddress!, batch: 1)[0] }
            let expected: Float = activation == .identity ? 0.78 : 0.6856801139382539
            XCTAssertEqual(output, expected, accuracy: 2e-7, "\(activation)")
        }
    }

    func testLayoutIsWeightThenBiasPerLayer() {
        let network = Network(inputWidth: 3, layers: [(4, .relu), (2, .identity)])
        XCTAssertEqual(network.layers[0].weightOffset, 0)
        XCTAssertEqual(network.layers[0].biasOffset, 12)
        XCTAssertEqual(network.layers[1].weightOffset, 16)
        XCTAssertEqual(network.layers[1].biasOffset, 24)
        XCTAssertEqual(network.parameterCount, 26)
    }

    /// Loss of the mean over the batch, in Double, for finite differences.
    private func meanLoss(_ network: Network, _ loss: Loss, _ input: [Float], _ labels: [Float], batch: Int) -> Double {
        let outputs = input.withUnsafeBufferPointer { network.forward(input: $0.baseAddress!, batch: batch) }
        return labels.withUnsafeBufferPointer {
            loss.evaluate(outputs: outputs, targets: $0.baseAddress!, batch: batch, width: network.outputWidth,
                          gradient: nil, gradientScale: 0).lossSum / Double(batch)
        }
    }

    /// The sign of every pre-activation of a layer with a kink (ReLU, leaky ReLU) in the last forward pass and, for
    /// L1, of every output's error (its kink).
    private func signs(_ network: Network, batch: Int, loss: Loss = .crossEntropy, labels: [Float] = []) -> [Bool] {
        var kinks = zip(network.preActivations, network.layers).filter { [.relu, .leakyRelu].contains($0.1.activation) }
            .flatMap { z, layer in (0..<(batch * layer.outputWidth)).map { z[$0] > 0 } }
        if loss == .meanAbsoluteError {
            let outputs = network.preActivations.last!
            kinks += labels.indices.map { outputs[$0] > labels[$0] }
        }
        return kinks
    }

    /// Every weight and bias gradient of every activation and loss, with 3 outputs (3 classes, 3 targets or 3 labels),
    /// against central differences.
    func testBackpropMatchesFiniteDifferences() {
        var generator = SplitMix64(seed: 42)
        let batch = 5, inputWidth = 4, outputs = 3
        for loss in Loss.allCases {
            for activation in Activation.allCases {
                for threads in [1, 2] {
                    let network = Network(inputWidth: inputWidth, layers: [(6, activation), (5, activation), (outputs, .identity)],
                                          threads: threads)
                    network.initialize(weights: .xavierNormal, biasValue: 0.1, seed: 3)
                    let input = (0..<(batch * inputWidth)).map { _ in Float(generator.nextNormal()) }
                    // Regression targets 0.5 to ~2 away from the initial outputs (on both sides of Huber's δ = 1, and
                    // far enough from L1's kink that a small step does not cross it).
                    let initial = Array(UnsafeBufferPointer(
                        start: input.withUnsafeBufferPointer { network.forward(input: $0.baseAddress!, batch: batch) }, count: batch * outputs))
                    let labels: [Float] = (0..<(batch * loss.targetWidth(outputWidth: outputs))).map { index in
                        switch loss {
                        case .crossEntropy: return Float(index % outputs)
                        case .binaryCrossEntropy: return Float((index * 7 / 3) % 2)
                        case .meanSquaredError, .meanAbsoluteError, .huber:
                            return initial[index] + (index % 2 == 0 ? 1 : -1) * Float(0.5 + 0.5 * abs(generator.nextNormal()))
                        }
                    }
                    // Analytic.
                    let prediction = input.withUnsafeBufferPointer { network.forward(input: $0.baseAddress!, batch: batch) }
                    var outputGradient = [Float](repeating: 0, count: batch * outputs)
                    _ = labels.withUnsafeBufferPointer { labelPointer in
                        outputGradient.withUnsafeMutableBufferPointer {
                            loss.evaluate(outputs: prediction, targets: labelPointer.baseAddress!, batch: batch, width: outputs,
                                          gradient: $0.baseAddress!, gradientScale: 1 / Float(batch))
                        }
                    }
                    input.withUnsafeBufferPointer { inputPointer in
                        outputGradient.withUnsafeBufferPointer {
                            network.backward(input: inputPointer.baseAddress!, outputGradient: $0.baseAddress!, batch: batch)
                        }
                    }
                    let analytic = Array(network.gradients)
                    // Numerical, every parameter.
                    let epsilon: Float = 1e-2
                    var checked = 0
                    for index in 0..<network.parameterCount {
                        let original = network.parameters[index]
                        network.parameters[index] = original + epsilon
                        let plus = meanLoss(network, loss, input, labels, batch: batch)
                        let plusSigns = signs(network, batch: batch, loss: loss, labels: labels)
                        network.parameters[index] = original - epsilon
                        let minus = meanLoss(network, loss, input, labels, batch: batch)
                        let minusSigns = signs(network, batch: batch, loss: loss, labels: labels)
                        network.parameters[index] = original
                        // A difference across a ReLU kink measures the kink, not the gradient: skip those.
                        if plusSigns != minusSigns { continue }
                        checked += 1
                        let numeric = (plus - minus) / Double(2 * epsilon)
                        let tolerance = 2e-3 + 2e-2 * abs(numeric)
                        if abs(Double(analytic[index]) - numeric) > tolerance {
                            XCTFail("\(loss) \(activation) threads \(threads): parameter \(index) analytic \(analytic[index]) numeric \(numeric)")
                            break
                        }
                    }
                    XCTAssertGreaterThan(checked, network.parameterCount * 3 / 4, "\(loss) \(activation): too few parameters checked")
                }
            }
        }
    }

    /// Each activation's derivative against a central difference of its forward, away from kinks.
    func testActivationDerivativesMatchFiniteDifferences() {
        let points: [Float] = [-4, -2.5, -1.1, -0.3, -0.05, 0.07, 0.4, 0.9, 1.7, 3.2, 5, -6, 7, 0.2, -0.7, 2.2, 0.01]
        for activation in Activation.allCases {
            var values = [Float](repeating: 0, count: points.count)
            var derivative = [Float](repeating: 0, count: points.count)
            let ones = [Float](repeating: 1, count: points.count)
            activation.forward(points, &values, count: points.count, threads: 1)
            activation.backward(z: points, a: values, outputGradient: ones, inputGradient: &derivative, count: points.count, threads: 1)
            for (index, x) in points.enumerated() {
                let h = 1e-3
                let plus = scalarForward(activation, Double(x) + h), minus = scalarForward(activation, Double(x) - h)
                XCTAssertEqual(Double(derivative[index]), (plus - minus) / (2 * h), accuracy: 1e-4, "\(activation) at \(x)")
                XCTAssertEqual(Double(values[index]), scalarForward(activation, Double(x)), accuracy: 2e-6 * max(1, abs(Double(x))),
                               "\(activation) value at \(x)")
            }
        }
    }

    /// PyTorch's definitions, in Double.
    private func scalarForward(_ activation: Activation, _ x: Double) -> Double {
        switch activation {
        case .identity: return x
        case .relu: return max(0, x)
        case .leakyRelu: return x > 0 ? x : 0.01 * x
        case .sigmoid: return 1 / (1 + exp(-x))
        case .tanh: return Foundation.tanh(x)
        case .gelu: return 0.5 * x * (1 + erf(x / 2.0.squareRoot()))
        }
    }

    /// Values PyTorch gives for the same inputs.
    func testLossValuesMatchPyTorch() {
        // F.cross_entropy(tensor([[1.,2.,3.],[1.,0.,-1.]]), tensor([2,0])) = 0.4076059...
        let logits: [Float] = [1, 2, 3, 1, 0, -1]
        let classes: [Float] = [2, 0]
        let ce = Loss.crossEntropy.evaluate(outputs: logits, targets: classes, batch: 2, width: 3, gradient: nil, gradientScale: 0)
        XCTAssertEqual(ce.lossSum / 2, 0.40760596, accuracy: 1e-6)
        XCTAssertEqual(ce.correct, 2)
        // F.mse_loss(tensor([0.5, 2.0]), tensor([1.0, -1.0])) = (0.25 + 9) / 2 = 4.625
        let mse = Loss.meanSquaredError.evaluate(outputs: [0.5, 2], targets: [1, -1], batch: 2, width: 1, gradient: nil, gradientScale: 0)
        XCTAssertEqual(mse.lossSum / 2, 4.625, accuracy: 1e-6)
        // F.binary_cross_entropy_with_logits(tensor([0.5, -2.0]), tensor([1., 0.])) = (0.474077 + 0.126928) / 2
        let bce = Loss.binaryCrossEntropy.evaluate(outputs: [0.5, -2], targets: [1, 0], batch: 2, width: 1, gradient: nil, gradientScale: 0)
        XCTAssertEqual(bce.lossSum / 2, (0.47407698 + 0.12692801) / 2, accuracy: 1e-6)
        XCTAssertEqual(bce.correct, 2)
        // Large logits stay finite.
        let extreme = Loss.binaryCrossEntropy.evaluate(outputs: [200, -200], targets: [0, 1], batch: 2, width: 1, gradient: nil, gradientScale: 0)
        XCTAssertEqual(extreme.lossSum, 400, accuracy: 1e-3)
    }

    func testSplitMix64KnownStreamAndPermutation() {
        var generator = SplitMix64(seed: 0)
        XCTAssertEqual(generator.next(), 0xE220_A839_7B1D_CDAF)
        XCTAssertEqual(generator.next(), 0x6E78_9E6A_A1B9_65F4)
        let order = epochPermutation(count: 1000, seed: 9, epoch: 3)
        XCTAssertEqual(Set(order).count, 1000)
        XCTAssertEqual(order, epochPermutation(count: 1000, seed: 9, epoch: 3))
        XCTAssertNotEqual(order, epochPermutation(count: 1000, seed: 9, epoch: 4))
    }

    func testInitializationBoundsAndDeterminism() {
        let first = Network(inputWidth: 100, layers: [(50, .relu), (10, .identity)])
        first.initialize(weights: .heUniform, biasValue: 0.5, seed: 11)
        let second = Network(inputWidth: 100, layers: [(50, .relu), (10, .identity)])
        second.initialize(weights: .heUniform, biasValue: 0.5, seed: 11)
        XCTAssertEqual(Array(first.parameters), Array(second.parameters))
        let bound = Float((6.0 / 100).squareRoot())
        let weights = first.parameters[0..<5000]
        XCTAssertTrue(weights.allSatisfy { abs($0) <= bound })
        XCTAssertGreaterThan(weights.max()!, bound * 0.95)
        XCTAssertTrue(first.parameters[5000..<5050].allSatisfy { $0 == 0.5 })
        // he_normal: standard deviation sqrt(2 / fan_in).
        first.initialize(weights: .heNormal, biasValue: 0, seed: 12)
        let values = first.parameters[0..<5000].map(Double.init)
        let deviation = (values.map { $0 * $0 }.reduce(0, +) / 5000).squareRoot()
        XCTAssertEqual(deviation, (2.0 / 100).squareRoot(), accuracy: 0.01)
    }
}
