import Foundation
import Kernels
import XCTest
@testable import NeuralNet

/// LARS and LAMB: the SIMD step against the scalar reference, and both against the papers' algorithms written out
/// here in Double.
final class LayerwiseOptimizerTests: XCTestCase {
    /// Two layers (4×3 weights + 4 biases, 2×4 weights + 2 biases) as the network lays them out.
    private let layers = [ParameterLayer(weights: 0..<12, biases: 12..<16), ParameterLayer(weights: 16..<24, biases: 24..<26)]

    private func values(_ count: Int, seed: UInt64) -> [Float] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state) >> 40) / Float(1 << 23)
        }
    }

    private func norm(_ x: [Double]) -> Double { x.reduce(0) { $0 + $1 * $1 }.squareRoot() }

    /// LARS, Algorithm 1 of "Large Batch Training of Convolutional Networks": λ = η‖w‖/(‖∇w‖ + β‖w‖),
    /// v ← m·v + γλ(∇w + βw), w ← w − v; biases: no decay, λ = 1.
    private func paperLARS(_ w: inout [Double], _ velocity: inout [Double], gradient: [Double], rate: Double,
                           momentum: Double, decay: Double, eta: Double) {
        for layer in layers {
            for (range, isWeight) in [(layer.weights, true), (layer.biases, false)] {
                let beta = isWeight ? decay : 0
                let weightNorm = norm(range.map { w[$0] }), gradientNorm = norm(range.map { gradient[$0] })
                let local = isWeight && weightNorm > 0 && gradientNorm > 0 ? eta * weightNorm / (gradientNorm + beta * weightNorm) : 1
                for i in range {
                    velocity[i] = momentum * velocity[i] + rate * local * (gradient[i] + beta * w[i])
                    w[i] -= velocity[i]
                }
            }
        }
    }

    /// LAMB, Algorithm 2 of "Large Batch Optimization for Deep Learning: Training BERT in 76 minutes" with φ the
    /// identity: r = m̂/(√v̂ + ε), x ← x − η‖x‖/‖r + λx‖·(r + λx); biases: no decay, ratio 1.
    private func paperLAMB(_ x: inout [Double], _ m: inout [Double], _ v: inout [Double], gradient: [Double], step t: Int,
                           rate: Double, beta1: Double, beta2: Double, epsilon: Double, decay: Double) {
        for layer in layers {
            for (range, isWeight) in [(layer.weights, true), (layer.biases, false)] {
                let lambda = isWeight ? decay : 0
                var update: [Int: Double] = [:]
                for i in range {
                    m[i] = beta1 * m[i] + (1 - beta1) * gradient[i]
                    v[i] = beta2 * v[i] + (1 - beta2) * gradient[i] * gradient[i]
                    let mHat = m[i] / (1 - pow(beta1, Double(t))), vHat = v[i] / (1 - pow(beta2, Double(t)))
                    update[i] = mHat / (vHat.squareRoot() + epsilon) + lambda * x[i]
                }
                let xNorm = norm(range.map { x[$0] }), updateNorm = norm(range.map { update[$0]! })
                let ratio = isWeight && xNorm > 0 && updateNorm > 0 ? xNorm / updateNorm : 1
                for i in range { x[i] -= rate * ratio * update[i]! }
            }
        }
    }

    private func check(_ settings: OptimizerOptions, steps: Int = 4) throws {
        let start = values(26, seed: 7), gradients = (0..<steps).map { values(26, seed: 100 + UInt64($0)) }
        let fast = Optimizer(settings: settings, parameterCount: 26, layers: layers)
        let reference = Optimizer(settings: settings, parameterCount: 26, layers: layers)
        var p = start, q = start
        var paper = start.map(Double.init), first = [Double](repeating: 0, count: 26), second = first
        for (index, g) in gradients.enumerated() {
            let rate = settings.learningRate * Float(index + 1) / Float(steps)
            fast.step(parameters: &p, gradients: g, learningRate: rate, threads: 2)
            reference.referenceStep(parameters: &q, gradients: g, learningRate: rate)
            let gradient = g.map(Double.init)
            if settings.kind == .lars {
                paperLARS(&paper, &first, gradient: gradient, rate: Double(rate), momentum: Double(settings.momentum),
                          decay: Double(settings.weightDecay), eta: Double(settings.trustCoefficient))
            } else {
                paperLAMB(&paper, &first, &second, gradient: gradient, step: index + 1, rate: Double(rate),
                          beta1: Double(settings.beta1), beta2: Double(settings.beta2), epsilon: Double(settings.epsilon),
                          decay: Double(settings.weightDecay))
            }
        }
        for i in 0..<26 {
            XCTAssertEqual(p[i], q[i], accuracy: 1e-6 * max(1, abs(q[i])), "\(settings.kind) fast vs reference at \(i)")
            XCTAssertEqual(Double(q[i]), paper[i], accuracy: 1e-5 * max(1, abs(paper[i])), "\(settings.kind) reference vs paper at \(i)")
        }
        XCTAssertNotEqual(p, start, "the step moved the parameters")
    }

    func testLARSAgreesWithReferenceAndPaper() throws {
        try check(OptimizerOptions(kind: .lars, learningRate: 2, momentum: 0.9, weightDecay: 0.01, trustCoefficient: 0.02))
        try check(OptimizerOptions(kind: .lars, learningRate: 1, weightDecay: 0))
    }

    func testLAMBAgreesWithReferenceAndPaper() throws {
        try check(OptimizerOptions(kind: .lamb, learningRate: 0.01, weightDecay: 0.1))
        try check(OptimizerOptions(kind: .lamb, learningRate: 0.004, beta1: 0.8, beta2: 0.99, weightDecay: 0))
    }

    /// The trust ratio makes a layer's LAMB step ‖x‖·rate long whatever the gradient's scale; a zero layer gets ratio 1.
    func testTrustRatioNormalizesTheStep() {
        let settings = OptimizerOptions(kind: .lamb, learningRate: 0.1, weightDecay: 0)
        for scale: Float in [1e-3, 1e3] {
            let optimizer = Optimizer(settings: settings, parameterCount: 26, layers: layers)
            let start = values(26, seed: 3)
            var p = start
            optimizer.step(parameters: &p, gradients: values(26, seed: 4).map { $0 * scale }, learningRate: 0.1, threads: 1)
            let moved = (0..<12).map { Double(p[$0] - start[$0]) }, size = norm((0..<12).map { Double(start[$0]) })
            XCTAssertEqual(norm(moved), 0.1 * size, accuracy: 1e-4 * size)
        }
        XCTAssertEqual(Optimizer.trustRatio(numerator: 0, denominator: 2), 1)
        XCTAssertEqual(Optimizer.trustRatio(numerator: 2, denominator: 0), 1)
    }
}
