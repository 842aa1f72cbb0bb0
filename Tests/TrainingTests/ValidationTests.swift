@testable import Config
@testable import Datasets
import Distributed
import Foundation
import NeuralNet
@testable import Observe
@testable import Training
import XCTest

/// The validation split, normalization without leaks, early stopping's bookkeeping and the new config keys.
final class ValidationTests: XCTestCase {
    func testSplitIsAFunctionOfSeedCountAndFractionOnly() throws {
        let split = try ValidationSplit(count: 1000, fraction: 0.15, seed: 7, batchSize: 32)
        XCTAssertEqual(split.validationRows.count, 150)
        XCTAssertEqual(split.trainingRows.count, 850)
        XCTAssertEqual(Set(split.validationRows + split.trainingRows), Set(0..<1000), "every row once")
        XCTAssertEqual(split.validationRows, split.validationRows.sorted())
        XCTAssertEqual(split, try ValidationSplit(count: 1000, fraction: 0.15, seed: 7, batchSize: 128), "batch size only checks")
        XCTAssertNotEqual(split, try ValidationSplit(count: 1000, fraction: 0.15, seed: 8, batchSize: 32))
        // Spread over the file, not a block at one end: every tenth of the rows holds some (15 expected; the
        // fewest for this seed is 4, well inside chance), each half about half.
        for tenth in 0..<10 {
            let count = split.validationRows.filter { $0 / 100 == tenth }.count
            XCTAssertTrue((1...35).contains(count), "tenth \(tenth): \(count)")
        }
        XCTAssertEqual(split.validationRows.filter { $0 < 500 }.count, 75, accuracy: 20)
        XCTAssertEqual(split.text.split(separator: "\n").map { Int($0)! }, split.validationRows)
        // round(fraction × count) rows.
        XCTAssertEqual(try ValidationSplit(count: 10, fraction: 0.25, seed: 0, batchSize: 1).validationRows.count, 3)
    }

    func testSplitErrorsNameTheKey() {
        func message(_ body: () throws -> Any) -> String {
            do { _ = try body(); return "no error" } catch { return String(describing: error) }
        }
        XCTAssertTrue(message { try ValidationSplit(count: 10, fraction: 0.01, seed: 0, batchSize: 1) }
            .contains("data.validation_fraction: 0.01 of 10 training rows leaves no validation row"))
        let tooFew = message { try ValidationSplit(count: 100, fraction: 0.5, seed: 0, batchSize: 64) }
        XCTAssertTrue(tooFew.contains("leaves 50 for training, fewer than one global batch (training.batch_size 64)"), tooFew)
    }

    /// Standardize statistics come from the training rows left after the split, and every set uses them.
    func testStandardizeUsesOnlyTheRemainingTrainingRows() throws {
        var generator = SplitMix64(seed: 3)
        let rows = 200, width = 3
        // Rows past 100 are far larger, so statistics of all rows differ from those of any subset.
        let features = (0..<(rows * width)).map { Float(generator.nextNormal()) + ($0 / width >= 100 ? 50 : 0) }
        let labels = (0..<rows).map { Float($0 % 2) }
        let config = try TrainingConfig.parse("""
            seed: 4
            data: {train: x.csv, normalize: standardize, validation_fraction: 0.3}
            model: {layers: [{units: 2}]}
            training: {batch_size: 10}
            """, source: "c.yaml")
        let whole = try Dataset(features: features, targets: labels, featureCount: width)
        let data = try SplitData(train: whole, validation: nil, test: try Dataset(features: features, targets: labels, featureCount: width),
                                 options: config.dataOptions)
        let split = try XCTUnwrap(data.split)
        XCTAssertEqual(data.train.count, 140)
        XCTAssertEqual(data.validation?.count, 60)
        let expected = try whole.subset(rows: split.trainingRows).meanAndStandardDeviation()
        XCTAssertEqual(data.train.offset, expected.mean)
        XCTAssertEqual(data.train.scale, expected.standardDeviation.map { 1 / $0 })
        XCTAssertNotEqual(data.train.offset, try whole.meanAndStandardDeviation().mean)
        XCTAssertEqual(data.validation?.offset, expected.mean)
        XCTAssertEqual(data.test?.scale, data.train.scale)
        // The subsets hold the chosen rows' values and labels, and name their rows in the file.
        var row = [Float](repeating: 0, count: width), label: Float = 0
        let validation = try XCTUnwrap(data.validation)
        try validation.applyNormalization(Normalization.none)
        let fifth = split.validationRows[5]
        [Int32(5)].withUnsafeBufferPointer { validation.gather(rows: $0, features: &row, targets: &label) }
        XCTAssertEqual(row, Array(features[(fifth * width)..<((fifth + 1) * width)]))
        XCTAssertEqual(label, labels[fifth])
        XCTAssertEqual(validation.location(ofRow: 5), "<memory> (item \(fifth))")
    }

    func testEarlyStoppingCountsPatienceWithMinimumDeltaInTheMetricsDirection() {
        let settings = TrainingConfig.EarlyStoppingSection(metric: "val_loss", patience: 2, minimumDelta: 0.01)
        var state = EarlyStoppingState(metric: "val_loss")
        func record(_ value: Double, _ epoch: Int) -> Bool {
            state.record(MetricValues([("val_loss", value), ("val_accuracy", 0.5)]), epoch: epoch, settings: settings)
        }
        XCTAssertTrue(record(1.0, 1))
        XCTAssertTrue(record(0.9, 2))
        XCTAssertFalse(record(0.895, 3), "an improvement within min_delta is none")
        XCTAssertEqual(state.epochsWithoutImprovement, 1)
        XCTAssertFalse(state.stopped)
        XCTAssertTrue(record(0.85, 4), "resets the count")
        XCTAssertFalse(record(0.86, 5))
        XCTAssertFalse(record(0.849, 6))
        XCTAssertTrue(state.stopped)
        XCTAssertEqual(state.bestEpoch, 4)
        XCTAssertEqual(state.bestValue, 0.85)

        // Accuracy: higher is better; without settings (no early stopping) the best is tracked, nothing stops.
        var accuracy = EarlyStoppingState(metric: "val_accuracy")
        for (epoch, value) in [0.5, 0.7, 0.6, 0.6, 0.6, 0.6].enumerated() {
            _ = accuracy.record(MetricValues([("val_loss", 1), ("val_accuracy", value)]), epoch: epoch + 1, settings: nil)
        }
        XCTAssertEqual(accuracy.bestEpoch, 2)
        XCTAssertEqual(accuracy.epochsWithoutImprovement, 4)
        XCTAssertFalse(accuracy.stopped)
        XCTAssertTrue(EarlyStoppingState.higherIsBetter("val_accuracy"))
        XCTAssertTrue(EarlyStoppingState.higherIsBetter("val_r2"))
        XCTAssertFalse(EarlyStoppingState.higherIsBetter("val_loss"))
        XCTAssertFalse(EarlyStoppingState.higherIsBetter("val_rmse"))
    }

    /// The metric must be one the task reports on validation data, whatever the task.
    func testEarlyStoppingMetricMustBeReportedByTheTask() throws {
        func check(_ metric: String, _ task: LearningTask) -> String {
            let config = try! TrainingConfig.parse("""
                data: {train: a.csv, validation_fraction: 0.2}
                model: {layers: [{units: 2}]}
                training: {early_stopping: {metric: \(metric)}}
                """, source: "c.yaml")
            do { try EarlyStoppingState.checkMetric(of: config, task: task); return "ok" } catch { return String(describing: error) }
        }
        let regression = LearningTask.regression(targets: 3), labels = LearningTask.multiLabel(labels: 4)
        XCTAssertEqual(check("val_rmse", regression), "ok")
        XCTAssertEqual(check("val_r2", regression), "ok")
        XCTAssertEqual(check("val_label_accuracy", labels), "ok")
        XCTAssertEqual(check("val_accuracy", .classification(classes: 3)), "ok")
        XCTAssertEqual(check("val_accuracy", regression), "training.early_stopping.metric: \"val_accuracy\" is not reported "
            + "for this task (validation reports: val_loss, val_rmse, val_mae, val_r2)")
        XCTAssertTrue(check("test_loss", .classification(classes: 3)).contains("is not reported"))
        XCTAssertTrue(EarlyStoppingState.higherIsBetter("val_label_accuracy"))
        XCTAssertFalse(EarlyStoppingState.higherIsBetter("val_mae"))
    }

    /// The state rides in the position's JSON (checkpoints, the resume broadcast); positions without it still read.
    func testPositionCarriesTheStateAndOldPositionsRead() throws {
        var position = TrainingPosition()
        position.epoch = 6
        var state = EarlyStoppingState(metric: "val_accuracy")
        state.bestValue = 0.8125
        state.bestEpoch = 4
        state.epochsWithoutImprovement = 2
        position.earlyStopping = state
        XCTAssertEqual(try TrainingPosition(json: position.json), position)
        let old = try TrainingPosition(json: #"{"epoch":2,"batch_index":0,"step":40,"epoch_loss_sum":0,"trained_samples":100,"training_seconds":1}"#)
        XCTAssertNil(old.earlyStopping)
        XCTAssertEqual(old.step, 40)
        // A run starts from the saved state only if it watches the same metric, and only with validation data.
        let config = try TrainingConfig.parse("""
            data: {train: a.csv, validation_fraction: 0.1}
            model: {layers: [{units: 2}]}
            training: {early_stopping: {metric: val_accuracy}}
            """, source: "c.yaml")
        XCTAssertEqual(EarlyStoppingState.start(config: config, hasValidation: true, saved: state), state)
        XCTAssertEqual(EarlyStoppingState.start(config: config, hasValidation: true, saved: EarlyStoppingState(metric: "val_loss")),
                       EarlyStoppingState(metric: "val_accuracy"))
        XCTAssertNil(EarlyStoppingState.start(config: config, hasValidation: false, saved: state))
    }

    func testConfigKeysDefaultsRoundTripAndErrors() throws {
        let base = "data: {train: a.csv}\nmodel: {layers: [{units: 8, activation: relu, dropout: 0.25}, {units: 3}]}\n"
        let config = try TrainingConfig.parse(base + """
            training: {early_stopping: {patience: 4}}
            """, source: "c.yaml", overrides: ["data.validation_fraction=0.2"])
        XCTAssertEqual(config.training.earlyStopping, .init(metric: "val_loss", patience: 4, minimumDelta: 0))
        XCTAssertEqual(config.data.validationFraction, 0.2)
        XCTAssertEqual(config.model.layers.map(\.dropout), [0.25, 0])
        XCTAssertEqual(try TrainingConfig.parse(config.yaml, source: "resolved.yaml"), config)
        XCTAssertTrue(config.yaml.contains("{units: 8, activation: relu, dropout: 0.25}"), config.yaml)
        XCTAssertTrue(config.yaml.contains("{units: 3, activation: identity}"), "dropout 0 is left out: \(config.yaml)")
        let off = try TrainingConfig.parse(base, source: "c.yaml")
        XCTAssertNil(off.training.earlyStopping)
        XCTAssertTrue(off.yaml.contains("early_stopping: null"))
        XCTAssertEqual(try TrainingConfig.parse(off.yaml, source: "r"), off)

        func error(_ text: String, _ overrides: [String] = []) -> String {
            do { _ = try TrainingConfig.parse(text, source: "c.yaml", overrides: overrides); return "no error" } catch {
                return String(describing: error)
            }
        }
        XCTAssertTrue(error(base + "training: {early_stopping: {patience: 2}}")
            .contains("c.yaml:3: training.early_stopping: needs validation data (data.validation_fraction or data.validation)"))
        XCTAssertTrue(error(base, ["data.validation_fraction=0"]).contains("data.validation_fraction: must be greater than 0"))
        XCTAssertTrue(error(base, ["data.validation_fraction=1"]).contains("data.validation_fraction: must be less than 1"))
        XCTAssertTrue(error(base, ["data.validation_fraction=0.1", "data.validation=v.csv"])
            .contains("give data.validation or data.validation_fraction, not both"))
        XCTAssertTrue(error(base, ["model.layers=[{units: 3, dropout: 1}]"]).contains("model.layers[0].dropout: must be less than 1"))
        XCTAssertTrue(error(base, ["model.layers=[{units: 3, dropout: -0.1}]"]).contains("model.layers[0].dropout: must be at least 0"))
        XCTAssertTrue(error(base, ["data.validation_fraction=0.1", "training.early_stopping={patience: 0}"])
            .contains("training.early_stopping.patience: must be at least 1"))
    }
}
