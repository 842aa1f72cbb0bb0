@testable import Config
@testable import Datasets
@testable import Formats
import Foundation
import NeuralNet
@testable import Training
import XCTest

/// Several targets: CSV target columns, their normalization, multi-label checks, the config keys that name them,
/// and the metrics a task reports.
final class TargetTests: TemporaryDirectoryTestCase {
    func testCSVTargetColumnsInAnyOrder() throws {
        let path = try write("a,y2,b,y1\n1,10,2,-1\n3,20,4,-2\n\n5,30,6,-3\n", "multi.csv")
        let data = try Dataset.loadCSV(path: path, targets: ["y1", "y2"])
        XCTAssertEqual(data.count, 3)
        XCTAssertEqual(data.featureNames, ["a", "b"])
        XCTAssertEqual(data.targetNames, ["y1", "y2"])
        XCTAssertEqual(data.targetCount, 2)
        XCTAssertEqual(data.targets, [-1, 10, -2, 20, -3, 30], "rows of targets in the order data.targets names them")
        guard case let .floats(values) = data.features else { return XCTFail("expected float features") }
        XCTAssertEqual(values, [1, 2, 3, 4, 5, 6])
        data.limit(to: 2)
        XCTAssertEqual(data.targets, [-1, 10, -2, 20])

        // Prediction inputs: absent target columns are fine, present ones are dropped (non-numeric become NaN).
        let input = try Dataset.loadCSV(path: write("a,y1,b\n1,cat,2\n", "input.csv"), targets: ["y1", "y2"], requireTargets: false)
        XCTAssertEqual(input.featureNames, ["a", "b"])
        XCTAssertTrue(input.targets[0].isNaN)
        XCTAssertEqual(input.targets[1], 0)
    }

    func testCSVTargetErrors() throws {
        let cases: [(String, [String], String)] = [
            ("a,y1\n1,2\n", ["y1", "y2"], ":1: no \"y2\" column in the header; columns are: \"a\", \"y1\""),
            ("a,y1,y1\n1,2,3\n", ["y1"], ":1: column \"y1\" appears more than once in the header"),
            ("y1,y2\n1,2\n", ["y1", "y2"], ":1: the header has no feature columns besides \"y1\", \"y2\""),
            ("a,y1,y2\n1,2,3\n4,five,6\n", ["y1", "y2"], ":3: non-numeric value \"five\" in column \"y1\""),
            ("a,y1,y2\n1,2,\n", ["y1", "y2"], ":2: missing target in column \"y2\" (every row needs its target)"),
        ]
        for (index, (text, targets, expected)) in cases.enumerated() {
            let path = try write(text, "case\(index).csv")
            XCTAssertEqual(errorMessage { try Dataset.loadCSV(path: path, targets: targets) }, path + expected)
        }
    }

    func testMultiLabelTargetsMustBeZeroOrOne() throws {
        let good = try Dataset.loadCSV(path: write("a,t1,t2\n1,0,1\n2,1,1\n", "good.csv"), targets: ["t1", "t2"])
        XCTAssertNoThrow(try good.validateBinaryTargets())
        let path = try write("a,t1,t2\n1,0,1\n\n2,1,0.5\n", "bad.csv")
        let bad = try Dataset.loadCSV(path: path, targets: ["t1", "t2"])
        XCTAssertEqual(errorMessage { try bad.validateBinaryTargets() },
                       "\(path):4: target \"t2\" is 0.5; binary_cross_entropy needs 0 or 1")
        let task = LearningTask.multiLabel(labels: 3)
        XCTAssertEqual(errorMessage { try task.validateTargets(of: good) }, "\(good.source): the data has 2 targets per row, the model predicts 3")
    }

    func testTargetStandardization() throws {
        let train = try Dataset.loadCSV(path: write("a,y1,y2\n0,1,100\n0,3,100\n0,5,100\n", "train.csv"), targets: ["y1", "y2"])
        let test = try Dataset.loadCSV(path: write("a,y1,y2\n0,4,90\n", "test.csv"), targets: ["y1", "y2"])
        try train.applyTargetNormalization(.standardize)
        try test.applyTargetNormalization(.standardize, statisticsFrom: train)
        XCTAssertEqual(train.targetMean, [3, 100])
        XCTAssertEqual(train.targetStandardDeviation[0], Float((8.0 / 3).squareRoot()), accuracy: 1e-6)
        XCTAssertEqual(train.targetStandardDeviation[1], 1, "a constant target keeps deviation 1")
        XCTAssertEqual(test.targetMean, train.targetMean)
        var features: [Float] = [0], targets: [Float] = [0, 0]
        let row: [Int32] = [0]
        row.withUnsafeBufferPointer { row in
            features.withUnsafeMutableBufferPointer { features in
                targets.withUnsafeMutableBufferPointer { test.gather(rows: row, features: features.baseAddress!, targets: $0.baseAddress!) }
            }
        }
        XCTAssertEqual(targets[0], 1 / Float((8.0 / 3).squareRoot()), accuracy: 1e-6)
        XCTAssertEqual(targets[1], -10)
        // The model file's record restores the same mapping; a dataset with other targets is refused.
        let record = train.normalizationRecord
        XCTAssertEqual(record.targetNames, ["y1", "y2"])
        XCTAssertEqual(record.targetMode, .standardize)
        let again = try Dataset.loadCSV(path: test.source, targets: ["y1", "y2"])
        try again.applyTargetNormalization(record)
        XCTAssertEqual(again.targetMean, train.targetMean)
        let single = try Dataset.loadCSV(path: write("a,label\n1,2\n", "single.csv"))
        XCTAssertTrue(errorMessage { try single.applyTargetNormalization(record) }.contains("rows have 1 targets but the saved target normalization covers 2"))
        XCTAssertTrue(errorMessage { try single.applyTargetNormalization(.standardize, statisticsFrom: train) }
            .contains("rows have 1 targets but the training data"))
    }

    /// Metrics in original units against a direct computation (scikit-learn's definitions: RMSE and MAE per target,
    /// R² around the evaluated data's mean, each averaged over targets).
    func testRegressionMetricsInOriginalUnits() throws {
        let outputs: [Float] = [1.5, 10, 2, 21, 2.5, 29, 4.5, 41]
        let truth: [Float] = [1, 12, 2, 20, 3, 30, 4, 40]
        let data = try Dataset(features: [0, 0, 0, 0], targets: truth, featureCount: 1, targetCount: 2)
        try data.applyTargetNormalization(.standardize)
        // What gather hands evaluation: normalized targets; the network's outputs are in normalized units too.
        let normalizedTruth = truth.indices.map { (truth[$0] - data.targetMean[$0 % 2]) / data.targetStandardDeviation[$0 % 2] }
        let normalizedOutputs = outputs.indices.map { (outputs[$0] - data.targetMean[$0 % 2]) / data.targetStandardDeviation[$0 % 2] }
        let task = LearningTask.regression(targets: 2)
        var sums = [Double](repeating: 0, count: task.sumCount(rows: 4))
        task.accumulate(Loss.BatchTotals(lossSum: 2), outputs: normalizedOutputs, targets: normalizedTruth, count: 4, firstRow: 0, into: &sums,
                        targetMean: data.targetMean, targetStandardDeviation: data.targetStandardDeviation)
        let metrics = task.metrics(of: sums, count: 4)
        // Target 0: errors .5, 0, −.5, .5 → RMSE √(.1875), MAE .375, R² 1 − .75/5; target 1: −2, 1, −1, 1 → √1.75, 1.25, 1 − 7/443.
        XCTAssertEqual(metrics["rmse"]!, (0.1875.squareRoot() + 1.75.squareRoot()) / 2, accuracy: 1e-5)
        XCTAssertEqual(metrics["mae"]!, (0.375 + 1.25) / 2, accuracy: 1e-5)
        XCTAssertEqual(metrics["r2"]!, ((1 - 0.75 / 5) + (1 - 7.0 / 443)) / 2, accuracy: 1e-5)
        XCTAssertEqual(metrics["loss"], 0.5)
        let perTarget = task.perTargetMetrics(of: sums, count: 4, names: ["a", "b"])
        XCTAssertEqual(perTarget.map(\.name), ["a", "b"])
        XCTAssertEqual(perTarget[1].metrics["mae"]!, 1.25, accuracy: 1e-5)
        // A constant target: R² 1 for a perfect fit, 0 otherwise (scikit-learn's force_finite).
        var constant = [Double](repeating: 0, count: LearningTask.regression(targets: 1).sumCount(rows: 2))
        LearningTask.regression(targets: 1).accumulate(Loss.BatchTotals(), outputs: [3, 3], targets: [3, 3], count: 2, firstRow: 0, into: &constant,
                                                       targetMean: [0], targetStandardDeviation: [1])
        XCTAssertEqual(LearningTask.regression(targets: 1).metrics(of: constant, count: 2)["r2"], 1)
    }

    func testMultiLabelMetrics() {
        let task = LearningTask.multiLabel(labels: 3)
        var sums = [Double](repeating: 0, count: task.sumCount(rows: 2))
        let logits: [Float] = [1, -1, 2, -3, 1, 1]
        let labels: [Float] = [1, 0, 1, 0, 0, 1]
        let totals = LossOptions(kind: .binaryCrossEntropy).evaluate(outputs: logits, targets: labels, batch: 2, width: 3,
                                                                      gradient: nil, gradientScale: 0)
        task.accumulate(totals, outputs: logits, targets: labels, count: 2, firstRow: 0, into: &sums, targetMean: [0, 0, 0],
                        targetStandardDeviation: [1, 1, 1])
        let metrics = task.metrics(of: sums, count: 2)
        XCTAssertEqual(metrics["accuracy"], 0.5, "subset accuracy: row 0 all right, row 1 label 1 wrong")
        XCTAssertEqual(metrics["label_accuracy"]!, 5.0 / 6, accuracy: 1e-12)
        XCTAssertEqual(task.perTargetMetrics(of: sums, count: 2, names: ["p", "q", "r"]).map { $0.metrics["accuracy"]! }, [1, 0.5, 1])
    }

    // MARK: - Config keys

    private let base = "data: {train: d.csv}\nmodel: {layers: [{units: 3}]}\n"

    func testTargetAndLossKeys() throws {
        let config = try TrainingConfig.parse("data: {train: d.csv, targets: [y1, y2, y3], normalize_targets: standardize}\n"
                                              + "model: {layers: [{units: 3}]}\nloss: {name: huber, delta: 0.5}\n", source: "c.yaml")
        XCTAssertEqual(config.data.targets, ["y1", "y2", "y3"])
        XCTAssertEqual(config.data.normalizeTargets, .standardize)
        XCTAssertEqual(config.loss, LossOptions(kind: .huber, delta: 0.5))
        XCTAssertTrue(config.yaml.contains("loss: {name: huber, delta: 0.5}"), config.yaml)
        XCTAssertTrue(config.yaml.contains("  targets: [\"y1\", \"y2\", \"y3\"]"), config.yaml)
        XCTAssertEqual(try TrainingConfig.parse(config.yaml, source: "resolved.yaml"), config)

        let plain = try TrainingConfig.parse(base + "loss: l1\n", source: "c.yaml")
        XCTAssertEqual(plain.loss, LossOptions(kind: .meanAbsoluteError))
        XCTAssertEqual(plain.data.targets, ["label"], "CSV defaults to the label column")
        XCTAssertTrue(plain.yaml.contains("\nloss: l1\n"), plain.yaml)
        XCTAssertEqual(try TrainingConfig.parse(base + "loss: {name: huber}\n", source: "c").loss.delta, 1)
        let npz = try TrainingConfig.parse("data: {train: d.npz}\nmodel: {layers: [{units: 3}]}\n", source: "c.yaml")
        XCTAssertEqual(npz.data.format, .npz)
        XCTAssertNil(npz.data.targets)
        XCTAssertEqual(try TrainingConfig.parse(npz.yaml, source: "r"), npz)
        XCTAssertFalse(try TrainingConfig.parse("data: {train: d/train}\nmodel: {layers: [{units: 3}]}\n", source: "c").yaml
            .contains("  targets:"), "IDX data writes no targets")
    }

    func testTargetAndLossKeyErrors() {
        let cases: [(String, String)] = [
            ("data: {train: d.csv, targets: [a, b, a]}\n", "c.yaml:1: data.targets: \"a\" is listed twice"),
            ("data: {train: d/train, targets: [a]}\n", "data.targets: IDX data has one label per image"),
            ("data: {train: d.csv, targets: []}\n", "data.targets: name at least one target"),
            ("data: {train: d.csv, targets: [[a]]}\n", "data.targets: expected a list of column names"),
            ("data: {train: d.csv, targets: a}\n", "data.targets: expected a list"),
            ("data: {train: d.csv, normalize_targets: scale}\n", "data.normalize_targets: unknown value \"scale\" (expected one of: none, standardize)"),
            ("data: {train: d.csv, normalize_targets: standardize}\n", "data.normalize_targets: only for regression losses (mse, l1, huber); cross_entropy learns classes"),
            ("loss: {name: mse, delta: 2}\n", "loss.delta: only huber takes a delta (the loss is mse)"),
            ("loss: {name: huber, delta: 0}\n", "loss.delta: must be greater than 0"),
            ("loss: {name: huber, gamma: 2}\n", "loss.gamma: unknown key"),
            ("loss: hinge\n", "loss.name: unknown value \"hinge\""),
        ]
        for (text, expected) in cases {
            let configText = text.hasPrefix("data:") ? text + "model: {layers: [{units: 3}]}\n" : base + text
            let got = errorMessage { try TrainingConfig.parse(configText, source: "c.yaml") }
            XCTAssertTrue(got.contains(expected), "\(text): \(got)")
        }
    }
}
