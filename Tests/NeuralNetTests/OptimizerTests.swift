import Kernels
import XCTest
@testable import NeuralNet

final class OptimizerTests: XCTestCase {
    private func run(_ settings: OptimizerOptions, parameter: Float, gradients: [Float], rate: Float? = nil) -> [Float] {
        let optimizer = Optimizer(settings: settings, parameterCount: 1)
        var p = [parameter]
        var trace: [Float] = []
        for g in gradients {
            optimizer.step(parameters: &p, gradients: [g], learningRate: rate ?? settings.learningRate, threads: 1)
            trace.append(p[0])
        }
        return trace
    }

    /// torch.optim.SGD(momentum=0.9, weight_decay=0.1) by hand: g' = g + wd·p; b = g' then 0.9b + g'; p -= lr·b.
    func testSGDMomentumWeightDecay() {
        let trace = run(OptimizerOptions(kind: .sgd, learningRate: 0.1, momentum: 0.9, weightDecay: 0.1),
                        parameter: 1, gradients: [0.5, 0.5])
        // step 1: g' = 0.6, b = 0.6, p = 0.94; step 2: g' = 0.594, b = 1.134, p = 0.8266
        XCTAssertEqual(trace[0], 0.94, accuracy: 1e-6)
        XCTAssertEqual(trace[1], 0.8266, accuracy: 1e-6)
        // Nesterov: p -= lr·(g' + 0.9·b): step 1: 1 − 0.1·(0.6 + 0.54) = 0.886
        let nesterov = run(OptimizerOptions(kind: .sgd, learningRate: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.1),
                           parameter: 1, gradients: [0.5])
        XCTAssertEqual(nesterov[0], 0.886, accuracy: 1e-6)
        let plain = run(OptimizerOptions(kind: .sgd, learningRate: 0.1), parameter: 1, gradients: [0.5])
        XCTAssertEqual(plain[0], 0.95, accuracy: 1e-7)
    }

    /// torch.optim.Adam(lr=0.1): the first step moves by lr·g/(|g|+eps); the second by PyTorch's bias-corrected rule.
    func testAdamAndAdamW() {
        let adam = run(OptimizerOptions(kind: .adam, learningRate: 0.1), parameter: 1, gradients: [0.5, -0.25])
        XCTAssertEqual(adam[0], 0.9, accuracy: 1e-6)
        // m = 0.9·0.05 + 0.1·(−0.25) = 0.02, v = 0.999·0.00025 + 0.001·0.0625 = 0.00031225
        let m = 0.02 / (1 - 0.81), v = 0.00031225 / (1 - 0.998001)
        XCTAssertEqual(Double(adam[1]), 0.9 - 0.1 * m / (v.squareRoot() + 1e-8), accuracy: 1e-5)
        // Adam's weight decay is added to the gradient: g' = 0.5 + 0.5·1 → still a step of lr on the first step.
        let coupled = run(OptimizerOptions(kind: .adam, learningRate: 0.1, weightDecay: 0.5), parameter: 1, gradients: [0.5])
        XCTAssertEqual(coupled[0], 0.9, accuracy: 1e-6)
        // AdamW shrinks first: p = 1·(1 − 0.1·0.5) − 0.1 = 0.85; the default decay is 0.01.
        let decoupled = run(OptimizerOptions(kind: .adamw, learningRate: 0.1, weightDecay: 0.5), parameter: 1, gradients: [0.5])
        XCTAssertEqual(decoupled[0], 0.85, accuracy: 1e-6)
        XCTAssertEqual(OptimizerOptions(kind: .adamw, learningRate: 1).weightDecay, 0.01)
        XCTAssertEqual(OptimizerOptions(kind: .adam, learningRate: 1).weightDecay, 0)
    }

    /// The SIMD, threaded `step` gives the bits of the scalar `referenceStep` for every rule, thread count and
    /// kernel variant this machine supports.
    func testStepMatchesReferenceBitwise() throws {
        try forEachSupportedKernelVariant { variant in checkStepMatchesReference(variant) }
    }

    private func checkStepMatchesReference(_ variant: KernelVariant) {
        let count = 70_003  // several chunks of the threaded split, and a scalar tail
        var state: UInt64 = 12345
        func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state) >> 40) / Float(1 << 23)
        }
        let start = (0..<count).map { _ in next() }
        let gradientSteps = (0..<3).map { _ in (0..<count).map { _ in next() } }
        let settings = [
            OptimizerOptions(kind: .sgd, learningRate: 0.1, weightDecay: 0.01),
            OptimizerOptions(kind: .sgd, learningRate: 0.1, momentum: 0.9, weightDecay: 0.01),
            OptimizerOptions(kind: .sgd, learningRate: 0.1, momentum: 0.9, nesterov: true),
            OptimizerOptions(kind: .adam, learningRate: 1e-3, weightDecay: 0.1),
            OptimizerOptions(kind: .adamw, learningRate: 1e-3),
        ]
        for setting in settings {
            for threads in [1, 2, 3] {
                let fast = Optimizer(settings: setting, parameterCount: count)
                let reference = Optimizer(settings: setting, parameterCount: count)
                var p = start, q = start
                for (step, g) in gradientSteps.enumerated() {
                    let rate = setting.learningRate * Float(step + 1)
                    fast.step(parameters: &p, gradients: g, learningRate: rate, threads: threads)
                    reference.referenceStep(parameters: &q, gradients: g, learningRate: rate)
                }
                XCTAssertEqual(p.map(\.bitPattern), q.map(\.bitPattern), "\(setting.kind) threads \(threads) \(variant)")
                XCTAssertEqual(fast.firstMoment.map(\.bitPattern), reference.firstMoment.map(\.bitPattern))
                XCTAssertEqual(fast.secondMoment.map(\.bitPattern), reference.secondMoment.map(\.bitPattern))
            }
        }
    }

    func testSchedules() {
        let warm = LearningRateSchedule(kind: .constant, baseRate: 1, warmupSteps: 4)
        XCTAssertEqual((0..<6).map { warm.rate(atStep: $0) }, [0.25, 0.5, 0.75, 1, 1, 1])
        let step = LearningRateSchedule(kind: .step, baseRate: 1, stepSize: 2, gamma: 0.5)
        XCTAssertEqual((0..<5).map { step.rate(atStep: $0) }, [1, 1, 0.5, 0.5, 0.25])
        let cosine = LearningRateSchedule(kind: .cosine, baseRate: 1, warmupSteps: 2, minimumRate: 0.1, totalSteps: 12)
        XCTAssertEqual(cosine.rate(atStep: 2), 1, accuracy: 1e-6)
        XCTAssertEqual(cosine.rate(atStep: 7), 0.55, accuracy: 1e-6)
        XCTAssertEqual(cosine.rate(atStep: 12), 0.1, accuracy: 1e-6)
    }
}
