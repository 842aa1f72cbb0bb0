@testable import Config
@testable import DataParallel
import Distributed
import Foundation
import Kernels
import NeuralNet
@testable import Training
import XCTest

/// The training step as a pipeline: its phases, the two gradient reductions, the backward listener, the task.
final class StepTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("plexus-step-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    /// A CSV of `rows` samples with 5 features and a label in 0..<3 (or a number, for regression), and a config for it.
    func config(rows: Int = 96, loss: String = "cross_entropy", outputs: Int = 3, extra: String = "") throws -> TrainingConfig {
        var generator = SplitMix64(seed: 11)
        var lines = ["a,b,c,d,e,label"]
        for row in 0..<rows {
            let features = (0..<5).map { _ in String(format: "%.4f", generator.nextUnitDouble() * 2 - 1) }
            let label = loss == "mse" ? String(format: "%.3f", generator.nextUnitDouble()) : String(row % 3)
            lines.append((features + [label]).joined(separator: ","))
        }
        let path = (directory as NSString).appendingPathComponent("data.csv")
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return try TrainingConfig.parse("""
            seed: 5
            data: {train: \(path), test: \(path)}
            model: {layers: [{units: 16, activation: tanh}, {units: \(outputs)}]}
            loss: \(loss)
            training: {batch_size: 24, threads: 1, epochs: 2}
            \(extra)
            """, source: "step.yaml")
    }

    func testChunkRangeShardsEveryBatchExactly() {
        for batch in [0, 1, 5, 7, 128, 129] {
            for worldSize in 1...5 {
                let shards = (0..<worldSize).map { chunkRange($0, of: worldSize, total: batch) }
                XCTAssertEqual(shards.map(\.count).reduce(0, +), batch)
                XCTAssertEqual(shards.first?.lowerBound, 0)
                XCTAssertEqual(shards.last?.upperBound, batch)
                for (a, b) in zip(shards, shards.dropFirst()) { XCTAssertEqual(a.upperBound, b.lowerBound) }
                XCTAssertLessThanOrEqual(shards.map(\.count).max()! - shards.map(\.count).min()!, 1)
            }
        }
    }

    /// Records the order of the step's phase boundaries.
    final class RecordingObserver: StepObserver {
        var events: [String] = []
        func begin(_ phase: StepPhase) { events.append("\(phase)") }
        func endStep(samples: Int) { events.append("end \(samples)") }
    }

    func testStepRunsThePipelineInOrderAndObserversSeeIt() throws {
        let setup = try TrainingSetup(config: try config(), communicator: InProcessCommunicator())
        let observer = RecordingObserver()
        let step = TrainingStep(setup: setup, reduction: try makeGradientReduction(setup.config.reductionOptions, network: setup.network, communicator: setup.communicator, threads: 1), observer: observer)
        let before = Array(setup.network.parameters)
        let outcome = try step.run(batchIndex: 3, of: setup.epochOrder(0), step: 0)
        XCTAssertEqual(observer.events, ["data", "forward", "backward", "reduce", "optimizer", "end 24"])
        XCTAssertEqual(outcome.samples, 24)
        XCTAssertNil(outcome.divergence)
        XCTAssertGreaterThan(outcome.lossSum, 0)
        XCTAssertNotEqual(Array(setup.network.parameters), before, "the optimizer step changed the parameters")
        // The last batch of an epoch is short: 96 = 4 × 24 exactly, so ask a 100-row set for its fifth batch.
        let short = try TrainingSetup(config: try config(rows: 100), communicator: InProcessCommunicator())
        let shortStep = TrainingStep(setup: short, reduction: try makeGradientReduction(short.config.reductionOptions, network: short.network, communicator: short.communicator, threads: 1))
        XCTAssertEqual(try shortStep.run(batchIndex: 4, of: short.epochOrder(0), step: 4).samples, 4)
    }

    /// With one rank both reductions leave the batch's gradient: the fixed-point one rounded per group, so the two
    /// agree to float rounding, and the fixed-point one equals the group sums done by hand bit for bit.
    func testFixedPointGroupsAgreeWithFloatAllreduceAndWithHandSums() throws {
        let setup = try TrainingSetup(config: try config(), communicator: InProcessCommunicator())
        let network = setup.network, rows = 24, group = 5
        let input = (0..<(rows * network.inputWidth)).map { Float(($0 * 37) % 19) / 19 - 0.5 }
        let outputGradient = (0..<(rows * network.outputWidth)).map { Float(($0 * 13) % 7) / 70 - 0.05 }
        func gradients(_ reduction: GradientReduction) throws -> [Float] {
            try input.withUnsafeBufferPointer { x in
                try outputGradient.withUnsafeBufferPointer { dy in
                    network.forward(input: x.baseAddress!, batch: rows)
                    XCTAssertTrue(reduction.backward(BackwardPass(network: network, input: x.baseAddress!,
                                                                  outputGradient: dy.baseAddress!, rows: rows)))
                    try reduction.finish()
                    return Array(network.gradients)
                }
            }
        }
        let communicator = InProcessCommunicator()
        let plain = try gradients(FloatAllreduce(network: network, communicator: communicator))
        let fixed = try gradients(FixedPointGroupReduction(network: network, communicator: communicator, group: group, threads: 2))
        for (a, b) in zip(plain, fixed) { XCTAssertEqual(a, b, accuracy: 1e-5 * max(1, abs(a))) }

        // By hand: back-propagate each group alone, round each value to fixed point, sum the integers, convert once.
        var sums = [Int64](repeating: 0, count: network.parameterCount)
        input.withUnsafeBufferPointer { x in
            outputGradient.withUnsafeBufferPointer { dy in
                network.forward(input: x.baseAddress!, batch: rows)
                for start in stride(from: 0, to: rows, by: group) {
                    let count = min(group, rows - start)
                    network.backward(input: x.baseAddress! + start * network.inputWidth,
                                     outputGradient: dy.baseAddress! + start * network.outputWidth, batch: count, rowOffset: start)
                    for i in 0..<network.parameterCount { sums[i] += fixedPointReference(network.gradients[i]) }
                }
            }
        }
        var expected = [Float](repeating: 0, count: network.parameterCount)
        sums.withUnsafeBufferPointer { fixedPointToFloatReference($0.baseAddress!, into: &expected, count: $0.count) }
        XCTAssertEqual(fixed, expected)
        XCTAssertEqual(FixedPointGroupReduction(network: network, communicator: communicator, group: group, threads: 1)
            .localRows(ofBatch: 23), 0..<23)
    }

    /// Hears which layers backward reports, in which order.
    final class RecordingListener: BackwardListener {
        var ready: [Int] = []
        func parameterGradientsReady(of network: Network, layer index: Int) { ready.append(index) }
    }

    func testBackwardListenerHearsEveryLayerLastFirstAndDefaultsToTheSameGradients() throws {
        let network = Network(inputWidth: 7, layers: [(9, .relu), (6, .gelu), (4, .identity)], threads: 1)
        network.initialize(weights: .heUniform, biasValue: 0.1, seed: 3)
        let rows = 5
        let input = (0..<(rows * 7)).map { Float($0 % 11) / 11 - 0.4 }
        let dy = (0..<(rows * 4)).map { Float($0 % 5) / 10 - 0.2 }
        func run(_ listener: BackwardListener?) -> [Float] {
            input.withUnsafeBufferPointer { x in
                dy.withUnsafeBufferPointer { g in
                    network.forward(input: x.baseAddress!, batch: rows)
                    network.backward(input: x.baseAddress!, outputGradient: g.baseAddress!, batch: rows, listener: listener)
                    return Array(network.gradients)
                }
            }
        }
        let listener = RecordingListener()
        XCTAssertEqual(run(listener), run(nil))
        XCTAssertEqual(listener.ready, [2, 1, 0])
    }

    func testTaskDecidesMetricsOnce() throws {
        XCTAssertEqual(try LearningTask(loss: .crossEntropy, outputWidth: 10), .classification(classes: 10))
        XCTAssertEqual(try LearningTask(loss: .meanSquaredError, outputWidth: 1), .regression(targets: 1))
        XCTAssertEqual(try LearningTask(loss: .huber, outputWidth: 3, targetCount: 3), .regression(targets: 3))
        XCTAssertEqual(try LearningTask(loss: .binaryCrossEntropy, outputWidth: 1), .binaryClassification)
        XCTAssertEqual(try LearningTask(loss: .binaryCrossEntropy, outputWidth: 4, targetCount: 4), .multiLabel(labels: 4))
        // Classification sums carry each row's class probabilities and class after the loss and the count right.
        let binary = [6, 3] + [Double](repeating: 0, count: LearningTask.binaryClassification.sumCount(rows: 4) - 2)
        XCTAssertEqual(LearningTask.binaryClassification.metrics(of: binary, count: 4).prefixed("test").entries.map(\.name),
                       ["test_loss", "test_accuracy", "test_auc", "test_f1", "test_balanced_accuracy", "test_log_loss"])
        let classes = [6, 3] + [Double](repeating: 0, count: LearningTask.classification(classes: 3).sumCount(rows: 4) - 2)
        XCTAssertEqual(LearningTask.classification(classes: 3).metrics(of: classes, count: 4)["accuracy"], 0.75)
        XCTAssertEqual(LearningTask.multiLabel(labels: 2).metrics(of: [6, 1, 3, 2], count: 4).entries.map(\.name),
                       ["loss", "accuracy", "label_accuracy"])
        XCTAssertEqual(LearningTask.regression(targets: 2).metrics(of: [Double](repeating: 1, count: 10), count: 4)
            .entries.map(\.name), ["loss", "rmse", "mae", "r2"])
        for (loss, width, targets, key) in [(Loss.meanSquaredError, 2, 1, "model.layers: mse"),
                                            (.huber, 3, 2, "model.layers: huber"),
                                            (.binaryCrossEntropy, 1, 3, "model.layers: binary_cross_entropy"),
                                            (.crossEntropy, 3, 2, "data.targets: cross_entropy")] {
            XCTAssertThrowsError(try LearningTask(loss: loss, outputWidth: width, targetCount: targets)) { error in
                XCTAssertTrue(String(describing: error).contains(key), "\(error)")
            }
        }
    }

    /// Every section declares each key once, and each declared key is written to the resolved config.
    func testEveryConfigKeyIsDeclaredOnceAndResolved() throws {
        func check<Section: ConfigSection>(_ type: Section.Type, _ value: Section, file: StaticString = #filePath, line: UInt = #line) {
            let names = Section.keys.map(\.name)
            XCTAssertEqual(Set(names).count, names.count, "a key declared twice in \(Section.self)", file: file, line: line)
            let written = value.resolved.map(\.0)
            XCTAssertTrue(Set(written).isSubset(of: names), file: file, line: line)
        }
        let sgd = try config(extra: "optimizer: {name: sgd, momentum: 0.5}")
        check(TrainingConfig.self, sgd)
        check(TrainingConfig.DataSection.self, sgd.data)
        check(TrainingConfig.ModelSection.self, sgd.model)
        check(OptimizerOptions.self, sgd.optimizer)
        check(TrainingConfig.TrainingSection.self, sgd.training)
        XCTAssertEqual(Set(sgd.optimizer.resolved.map(\.0)), ["name", "lr", "momentum", "nesterov", "weight_decay"])
        XCTAssertEqual(try TrainingConfig.parse(sgd.yaml, source: "resolved.yaml"), sgd)
        // Defaults come from the optimizer's own declaration.
        XCTAssertEqual(sgd.optimizer.learningRate, OptimizerOptions(kind: .sgd).learningRate)
        XCTAssertEqual(try config(extra: "optimizer: {name: adamw}").optimizer, OptimizerOptions(kind: .adamw))
    }
}

extension TrainingStep {
    /// A step over `setup`'s training rows, as the trainer builds it.
    convenience init(setup: TrainingSetup, reduction: GradientReduction, observer: StepObserver? = nil) {
        self.init(network: setup.network, optimizer: setup.optimizer, schedule: setup.schedule, loss: setup.config.loss,
                  rows: setup.train, reduction: reduction, communicator: setup.communicator,
                  options: setup.config.stepOptions(threads: setup.threads), observer: observer)
    }
}
