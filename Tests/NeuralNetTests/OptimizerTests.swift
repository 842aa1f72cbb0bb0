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

    /// A step reading its gradients from a source of blocks (37 at a time, formed in a scratch copy and scaled there,
    /// as PowerSGD's rebuilt rows are) gives the bits of a step from the whole buffer scaled in place, for every rule
    /// (LARS and LAMB through `wholeGradients`), thread count, a slice of the parameters, and with and without a
    /// clipping scale.
    func testStepFromBlocksMatchesStepFromBuffer() {
        let count = 40_003, layers = [ParameterLayer(weights: 0..<30_000, biases: 30_000..<30_100),
                                      ParameterLayer(weights: 30_100..<40_000, biases: 40_000..<40_003)]
        var generator = SplitMix64(seed: 5, stream: 1)
        let start = (0..<count).map { _ in Float(generator.nextUnitDouble() - 0.5) }
        let gradientSteps = (0..<3).map { _ in (0..<count).map { _ in Float(generator.nextUnitDouble() - 0.5) } }
        let settings = [
            OptimizerOptions(kind: .sgd, learningRate: 0.1, weightDecay: 0.01),
            OptimizerOptions(kind: .sgd, learningRate: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.01),
            OptimizerOptions(kind: .adam, learningRate: 1e-3, weightDecay: 0.1),
            OptimizerOptions(kind: .adamw, learningRate: 1e-3),
            OptimizerOptions(kind: .lars, momentum: 0.9, weightDecay: 1e-4),
            OptimizerOptions(kind: .lamb, learningRate: 1e-3),
        ]
        for setting in settings {
            let ranges: [Range<Int>?] = setting.kind.isLayerwise ? [nil] : [nil, 1_000..<35_017]
            for threads in [1, 2] { for scale in [nil, Float(0.37)] { for range in ranges {
                let whole = Optimizer(settings: setting, parameterCount: count, layers: layers)
                let blocked = Optimizer(settings: setting, parameterCount: count, layers: layers)
                var p = start, q = start
                for (step, g) in gradientSteps.enumerated() {
                    let rate = setting.learningRate * Float(step + 1)
                    var scaled = g
                    if let scale { Kernels.scale(&scaled, count: count, by: scale) }
                    whole.step(parameters: &p, gradients: scaled, learningRate: rate, threads: threads, range: range)
                    let source = BlocksOf37(g, scale: scale)
                    blocked.step(parameters: &q, gradients: source, learningRate: rate, threads: threads, range: range)
                    XCTAssertGreaterThanOrEqual(source.blocksHandedOut, setting.kind.isLayerwise ? 0 : ((range ?? 0..<count).count + 36) / 37)
                    if setting.kind.isLayerwise { XCTAssertEqual(source.blocksHandedOut, 0) }
                }
                let what = "\(setting.kind) threads \(threads) scale \(String(describing: scale)) \(String(describing: range))"
                XCTAssertEqual(p.map(\.bitPattern), q.map(\.bitPattern), what)
                XCTAssertEqual(whole.firstMoment.map(\.bitPattern), blocked.firstMoment.map(\.bitPattern), what)
                XCTAssertEqual(whole.secondMoment.map(\.bitPattern), blocked.secondMoment.map(\.bitPattern), what)
            } } }
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

/// Gradients handed out 37 at a time within each part, each block copied into its part's scratch and scaled there.
private final class BlocksOf37: GradientSource {
    let values: [Float], scale: Float?
    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 37 * 8)
    let whole: UnsafeMutableBufferPointer<Float>
    /// Blocks handed out by each part.
    let blocks = UnsafeMutableBufferPointer<Int>.allocate(capacity: 8)
    var blocksHandedOut: Int { blocks.reduce(0, +) }

    init(_ values: [Float], scale: Float?) {
        (self.values, self.scale) = (values, scale)
        whole = .allocate(capacity: values.count)
        blocks.initialize(repeating: 0)
    }

    deinit { scratch.deallocate(); whole.deallocate(); blocks.deallocate() }

    func beginPass(over range: Range<Int>, parts: Int) { precondition(parts <= 8) }

    func forEachBlock<Update: GradientUpdate>(inPart part: Int, of parts: Int, of range: Range<Int>, _ update: Update) {
        let own = partRange(part, of: parts, of: range), scratch = self.scratch + 37 * part
        var handedOut = 0
        for first in stride(from: own.lowerBound, to: own.upperBound, by: 37) {
            let block = first..<min(own.upperBound, first + 37)
            for (offset, index) in block.enumerated() { scratch[offset] = scale.map { values[index] * $0 } ?? values[index] }
            update.update(block, gradients: scratch)
            handedOut += 1
        }
        blocks[part] += handedOut
    }

    func wholeGradients(_ range: Range<Int>) -> UnsafePointer<Float> {
        for (index, value) in values.enumerated() { whole[index] = range.contains(index) ? scale.map { value * $0 } ?? value : value }
        return UnsafePointer(whole.baseAddress!)
    }
}
