@testable import Datasets
@testable import Formats
import Foundation
import Metrics
import NeuralNet
@testable import Support
@testable import Tables
@testable import Training
import XCTest

/// Tables as they come, checked against what pandas and scikit-learn make of the same rows (Tests/fixtures/tables,
/// written by make_fixtures.py there): categories and their levels, gaps and their fills, class names, the quantile
/// transform, the classification metrics, and what the model file records of them; and each bad value ending in one
/// line naming the key or file:line.
final class TablesTests: TemporaryDirectoryTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fixtures").appendingPathComponent("tables").path

    func fixture(_ name: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Self.fixtures + "/" + name)))
    }

    func table(_ path: String, rules: ColumnRules, targets: [String] = ["species"]) throws -> LoadedData {
        try LoadedData.load(.path(path), format: .csv, targets: targets, rules: rules, classTargets: true)
    }

    func features(_ data: Dataset) -> [Float] {
        guard case let .floats(values) = data.features else { return [] }
        return values
    }

    func testLevelsFillsAndClassNamesMatchScikitLearn() throws {
        let expected = try XCTUnwrap(try fixture("table.json") as? [String: Any])
        let levels = try XCTUnwrap(expected["levels"] as? [String: [String]])
        let classes = try XCTUnwrap(expected["classes"] as? [String])
        let path = Self.fixtures + "/table.csv"
        for strategy in [MissingStrategy.mean, .median] {
            let rules = ColumnRules(categorical: [("island", .oneHot), ("sex", .oneHot)], missing: strategy, missingIndicator: true)
            let loaded = try table(path, rules: rules)
            let data = try loaded.dataset(rules: rules, targets: ["species"], classTargets: true)
            let encoding = try XCTUnwrap(data.encoding)
            XCTAssertEqual(encoding.classNames, classes)
            let fills = try XCTUnwrap(expected[strategy.rawValue] as? [String: Double])
            var indicators = 0
            for column in encoding.columns {
                switch column.kind {
                case let .categorical(fitted):
                    XCTAssertEqual(fitted.levels, levels[column.name], column.name)
                    XCTAssertEqual(fitted.missingLevel, column.name == "sex", column.name)
                case let .numeric(fill, indicator):
                    XCTAssertEqual(Double(try XCTUnwrap(fill)), try XCTUnwrap(fills[column.name]), accuracy: 1e-3, column.name)
                    XCTAssertTrue(indicator)
                    indicators += 1
                }
            }
            // Inputs: island (3 levels + other), bill, sex (2 levels + missing + other), mass, then 2 indicators.
            XCTAssertEqual(data.featureCount, 4 + 1 + 4 + 1 + indicators)
            XCTAssertEqual(encoding.featureNames.prefix(4), ["island=Biscoe", "island=Dream", "island=Torgersen", "island=(other)"])
            let values = features(data), width = data.featureCount
            let gaps = try XCTUnwrap(expected["gaps"] as? [String: Int])
            // Each row has one 1 per one-hot column; indicators count the gaps; a gap holds the fill.
            for row in 0..<data.count {
                XCTAssertEqual(values[(row * width)..<(row * width + 4)].reduce(0, +), 1)
                XCTAssertEqual(values[(row * width + 5)..<(row * width + 9)].reduce(0, +), 1)
            }
            XCTAssertEqual(Int((0..<data.count).map { values[$0 * width + width - 2] }.reduce(0, +)), gaps["bill"])
            XCTAssertEqual(Int((0..<data.count).map { values[$0 * width + width - 1] }.reduce(0, +)), gaps["mass"])
            let missingSex = (0..<data.count).filter { values[$0 * width + 4 + 1 + 2] == 1 }.count
            XCTAssertEqual(missingSex, gaps["sex"])
            for row in 0..<data.count where values[row * width + width - 1] == 1 {
                XCTAssertEqual(Double(values[row * width + 9]), fills["mass"]!, accuracy: 1e-3)
            }
            // Targets are class indices into the sorted names; balanced class weights are scikit-learn's.
            XCTAssertEqual(Set(data.targets), Set((0..<classes.count).map(Float.init)))
            let balanced = try balancedClassWeights(counts: data.classCounts(classCount: classes.count), classNames: classes)
            for (weight, want) in zip(balanced, try XCTUnwrap(expected["balanced_class_weights"] as? [Double])) {
                XCTAssertEqual(Double(weight), want, accuracy: 1e-6)
            }
            data.applyClassWeights(balanced)
            XCTAssertEqual(data.rowWeights?.count, data.count)
            XCTAssertEqual(Double(data.rowWeights![0]), Double(balanced[Int(data.targets[0])]), accuracy: 1e-7)
        }
    }

    func testRareAndUnseenLevelsGoToOther() throws {
        let train = try write("c,x,label\nb,1,0\na,2,1\nb,3,0\nc,4,1\nb,5,0\na,6,1\n", "train.csv")
        let test = try write("c,x,label\nz,1,0\nb,2,1\nc,3,0\n", "test.csv")
        let rules = ColumnRules(categorical: [("c", .oneHot)], rareCategoryCount: 2)
        let split = try SplitData(train: try table(train, rules: rules, targets: ["label"]), validation: nil,
                                  test: try table(test, rules: rules, targets: ["label"]),
                                  options: DataOptions(normalize: .none, normalizeTargets: .none, validationFraction: nil, seed: 0,
                                                       batchSize: 2, rules: rules, targets: ["label"]))
        let encoding = try XCTUnwrap(split.encoding)
        guard case let .categorical(levels) = encoding.columns[0].kind else { return XCTFail("c is categorical") }
        XCTAssertEqual(levels.levels, ["a", "b"])  // c was seen once, fewer than 2 times
        let testData = try XCTUnwrap(split.test)
        let values = features(testData), width = testData.featureCount
        XCTAssertEqual(width, 4)
        XCTAssertEqual(Array(values[0..<3]), [0, 0, 1])  // z: never seen → other
        XCTAssertEqual(Array(values[width..<(width + 3)]), [0, 1, 0])
        XCTAssertEqual(Array(values[(2 * width)..<(2 * width + 3)]), [0, 0, 1])  // c: rare → other
        XCTAssertEqual(testData.unseen.map(\.count), [1])  // only z counts as unseen; c was a training value
        XCTAssertEqual(split.unseenLevelNotes.count, 1)
        XCTAssertTrue(split.unseenLevelNotes[0].contains("1 categorical value not among the training levels went to \"other\" (c 1)"))
    }

    func testQuantileTransformMatchesScikitLearn() throws {
        let expected = try XCTUnwrap(try fixture("quantile.json") as? [String: Any])
        let count = try XCTUnwrap(expected["n_quantiles"] as? Int)
        let train = try XCTUnwrap(expected["train"] as? [[Double]]), test = try XCTUnwrap(expected["test"] as? [[Double]])
        let trainOut = try XCTUnwrap(expected["train_transformed"] as? [[Double]])
        let testOut = try XCTUnwrap(expected["test_transformed"] as? [[Double]])
        for column in train.indices {
            var values = train[column]
            let quantiles = FeatureQuantiles(fitting: &values, levels: count)
            for (value, want) in zip(train[column], trainOut[column]) { XCTAssertEqual(quantiles.transform(value), want, accuracy: 1e-9) }
            for (value, want) in zip(test[column], testOut[column]) { XCTAssertEqual(quantiles.transform(value), want, accuracy: 1e-9) }
            XCTAssertEqual(FeatureQuantiles(values: quantiles.values), quantiles)  // as a model file restores it
        }
    }

    func testClassificationMetricsMatchScikitLearn() throws {
        let cases = try XCTUnwrap(try fixture("metrics.json") as? [[String: Any]])
        XCTAssertEqual(cases.count, 2)
        for entry in cases {
            let classes = try XCTUnwrap(entry["classes"] as? Int)
            let probabilities = try XCTUnwrap(entry["probabilities"] as? [[Double]]).flatMap { $0 }
            let labels = try XCTUnwrap(entry["labels"] as? [Int])
            let predictions = ClassPredictions(probabilities: probabilities, labels: labels, classCount: classes)
            XCTAssertEqual(predictions.auc, try XCTUnwrap(entry["auc"] as? Double), accuracy: 1e-12, "\(classes) classes")
            XCTAssertEqual(predictions.macroF1, try XCTUnwrap(entry["f1"] as? Double), accuracy: 1e-12)
            XCTAssertEqual(predictions.balancedAccuracy, try XCTUnwrap(entry["balanced_accuracy"] as? Double), accuracy: 1e-12)
            XCTAssertEqual(predictions.logLoss, try XCTUnwrap(entry["log_loss"] as? Double), accuracy: 1e-9)
        }
    }

    func testModelFileRecordsTheColumnRules() throws {
        let rules = ColumnRules(categorical: [("island", .oneHot), ("sex", .oneHot)], missing: .median, missingIndicator: true)
        let data = try table(Self.fixtures + "/table.csv", rules: rules).dataset(rules: rules, targets: ["species"], classTargets: true)
        try data.applyNormalization(.quantile, quantileCount: 10)
        var metadata: [String: String] = [:]
        let record = data.normalizationRecord
        ModelFile.addTableMetadata(to: &metadata, normalization: record)
        var restored = NormalizationRecord(mode: .quantile, offset: [], scale: [])
        try ModelFile.readTableMetadata(metadata, into: &restored, inputWidth: data.featureCount, path: "model.safetensors")
        XCTAssertEqual(restored.encoding, record.encoding)
        XCTAssertEqual(restored.quantiles, record.quantiles)
        metadata["plexus.columns"] = "{\"columns\": 3}"
        XCTAssertEqual(errorMessage { try ModelFile.readTableMetadata(metadata, into: &restored, inputWidth: data.featureCount,
                                                                      path: "model.safetensors") },
                       "model.safetensors: corrupt plexus metadata: plexus.columns")
    }

    func testExportTakesEmbeddingColumnsAsText() throws {
        let city = CategoricalLevels(levels: ["Lima", "Oslo"], missingLevel: false, encoding: .embedding(dimension: 2))
        var record = NormalizationRecord(mode: .none, offset: [], scale: [], targetNames: ["y"])
        record.encoding = TableEncoding(columns: [FeatureColumn(name: "x", kind: .numeric(fill: nil, indicator: false)),
                                                  FeatureColumn(name: "city", kind: .categorical(city))],
                                        missingValues: [""], missing: .error, targets: ["y"], sampleWeight: nil, classNames: nil)
        let saved = ModelFile.Saved(network: Network(inputWidth: record.encoding!.featureCount, layers: [(1, .identity)],
                                                     embeddings: record.encoding!.embeddings),
                                    loss: LossOptions(kind: .meanSquaredError), normalization: record, config: nil)
        let embedded = try ModelExport.onnxGraph(of: saved, task: .regression(targets: 1), source: "m.safetensors")
        XCTAssertEqual(embedded.inputs, ["x", "city"])
        XCTAssertEqual(embedded.outputs, ["predictions"])
        record.encoding!.columns[1].kind = .categorical(CategoricalLevels(levels: ["Lima", "Oslo"], missingLevel: false, encoding: .oneHot))
        let oneHot = ModelFile.Saved(network: Network(inputWidth: record.encoding!.featureCount, layers: [(1, .identity)]),
                                     loss: LossOptions(kind: .meanSquaredError), normalization: record, config: nil)
        XCTAssertEqual(try ModelExport.onnxGraph(of: oneHot, task: .regression(targets: 1), source: "m.safetensors").inputs, ["x", "city"])
    }

    func testBadValuesAreOneLineNamingKeyOrLine() throws {
        let path = try write("name,x,w,label\nab,1,1,0\ncd,2,-1,1\nef,3,2,1\n", "bad.csv")
        func message(_ rules: ColumnRules, targets: [String] = ["label"]) -> String {
            errorMessage { try self.table(path, rules: rules, targets: targets).dataset(rules: rules, targets: targets) }
        }
        XCTAssertEqual(message(ColumnRules()), path + ":2: non-numeric value \"ab\" in column \"name\" (list a text column under data.categorical)")
        XCTAssertTrue(message(ColumnRules(categorical: [("zip", .oneHot)])).hasPrefix("data.categorical: no column \"zip\" in " + path))
        XCTAssertTrue(message(ColumnRules(categorical: [("name", .oneHot)], sampleWeight: "weight"))
            .hasPrefix("data.sample_weight: no column \"weight\""))
        XCTAssertEqual(message(ColumnRules(categorical: [("name", .oneHot)], sampleWeight: "w")),
                       path + ":3: sample weight -1.0 in column \"w\" is below 0 (data.sample_weight)")
        let fine = try write("name,x,w,label\nab,1,1,0\ncd,2,1,\n", "gap.csv")
        XCTAssertEqual(errorMessage {
            try self.table(fine, rules: ColumnRules(categorical: [("name", .oneHot)], missing: .mean), targets: ["label"])
                .dataset(rules: ColumnRules(categorical: [("name", .oneHot)], missing: .mean), targets: ["label"])
        }, fine + ":3: missing target in column \"label\" (every row needs its target)")
    }
}
