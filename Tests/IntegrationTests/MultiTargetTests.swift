@testable import Formats
import Foundation
@testable import Training
import XCTest

/// Several targets through the binary: multi-target regression and multi-label classification from CSV, and npz input,
/// each trained, evaluated and predicted; the same weights on 1 and 2 ranks through mpirun.
final class MultiTargetTests: TemporaryDirectoryTestCase {

    func fixture(_ name: String) -> String { PlexusProcess.root + "/Tests/fixtures/npz/" + name }

    func writeFile(_ name: String, _ text: String) -> String {
        _ = FileManager.default.createFile(atPath: path(name), contents: Data(text.utf8))
        return path(name)
    }

    func json(_ text: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], text)
    }

    func summary(_ run: String) throws -> [String: Any] {
        try json(String(contentsOfFile: run + "/summary.json", encoding: .utf8))
    }

    func weights(_ run: String) throws -> [Float] {
        try SafeTensors.read(path: run + "/final.safetensors").tensors.flatMap(\.values)
    }

    /// A deterministic pseudo-random value in [-1, 1) for row `row`, column `column`.
    func noise(_ row: Int, _ column: Int) -> Double {
        var state = UInt64(row * 131 + column * 7919 + 17) &* 0x9E37_79B9_7F4A_7C15
        state ^= state >> 29
        state = state &* 0xBF58_476D_1CE4_E5B9
        state ^= state >> 32
        return Double(state % 2_000_000) / 1_000_000 - 1
    }

    /// CSV with features a, b, c and targets: three smooth functions of them (regression) or three 0/1 labels.
    func writeCSV(_ name: String, rows: Range<Int>, multiLabel: Bool) -> String {
        var lines = [multiLabel ? "a,p,b,q,c,r" : "a,speed,b,angle,c,load"]
        for row in rows {
            let a = noise(row, 0), b = noise(row, 1), c = noise(row, 2)
            let targets = multiLabel
                ? [a + b > 0 ? 1.0 : 0, c > 0.2 ? 1 : 0, a * c > 0 ? 1 : 0]
                : [100 + 20 * a - 10 * b, 5 * b * c + 3, -50 + 40 * sin(2 * c)]
            lines.append("\(a),\(targets[0]),\(b),\(targets[1]),\(c),\(targets[2])")
        }
        return writeFile(name, lines.joined(separator: "\n") + "\n")
    }

    func config(_ name: String, train: String, test: String, targets: String, loss: String, extra: String = "") -> String {
        writeFile(name, """
            seed: 5
            data: {train: \(train), test: \(test), targets: \(targets), normalize: standardize\(extra)}
            model: {layers: [{units: 32, activation: tanh}, {units: 3}]}
            loss: \(loss)
            optimizer: {name: adam, lr: 0.01}
            training: {epochs: 30, batch_size: 32, threads: 1}
            """)
    }

    /// Trains `configPath` on 1 rank and on 2 ranks (mpirun) and checks both end with the same weights.
    func trainOnOneAndTwoRanks(_ configPath: String, name: String) throws -> String {
        let single = path("\(name)-1")
        let one = try PlexusProcess.plexus(["train", configPath, "--run-dir", single, "--progress", "plain"])
        XCTAssertEqual(one.status, 0, one.standardError)
        let double = path("\(name)-2")
        let two = try PlexusProcess.mpirun(ranks: 2, ["train", configPath, "--run-dir", double])
        XCTAssertEqual(two.status, 0, two.standardError)
        XCTAssertEqual(try summary(double)["world_size"] as? Int, 2)
        let reference = try weights(single), other = try weights(double)
        XCTAssertEqual(reference.count, other.count)
        let difference = zip(reference, other).map { abs($0 - $1) }.max() ?? .infinity
        print("\(name): max |Δweight| 2 ranks vs 1: \(difference)")
        XCTAssertLessThanOrEqual(difference, 1e-5, name)
        for key in try summary(single).keys where key.hasPrefix("test_") {
            let first = try XCTUnwrap(summary(single)[key] as? Double), second = try XCTUnwrap(summary(double)[key] as? Double)
            XCTAssertEqual(first, second, accuracy: 1e-4 * max(1, abs(first)), "\(name) \(key)")
        }
        return single
    }

    /// Reads predict's CSV output: header and rows of numbers.
    func readPredictions(_ file: String) throws -> (header: [String], rows: [[Double]]) {
        let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n")
        let header = lines.first.map { $0.split(separator: ",").map(String.init) } ?? []
        return (header, try lines.dropFirst().map { line in try line.split(separator: ",").map { try XCTUnwrap(Double($0)) } })
    }

    func testMultiTargetRegression() throws {
        let train = writeCSV("train.csv", rows: 0..<600, multiLabel: false)
        let test = writeCSV("test.csv", rows: 600..<800, multiLabel: false)
        let configPath = config("regression.yaml", train: train, test: test, targets: "[speed, angle, load]", loss: "mse",
                                extra: ", normalize_targets: standardize")
        let run = try trainOnOneAndTwoRanks(configPath, name: "regression")

        let metrics = try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(metrics.count, 30)
        let last = try json(String(metrics.last!))
        for key in ["test_loss", "test_rmse", "test_mae", "test_r2"] { XCTAssertNotNil(last[key], key) }
        XCTAssertNil(last["test_accuracy"])
        let r2 = try XCTUnwrap(last["test_r2"] as? Double)
        XCTAssertGreaterThan(r2, 0.9, "the three targets are smooth functions of the features")

        // evaluate: the same metrics as the last epoch, and each target's own.
        let evaluate = try PlexusProcess.plexus(["evaluate", run])
        XCTAssertEqual(evaluate.status, 0, evaluate.standardError)
        let report = try json(evaluate.standardOutput)
        XCTAssertEqual(try XCTUnwrap(report["r2"] as? Double), r2, accuracy: 1e-6)
        XCTAssertEqual(try XCTUnwrap(report["rmse"] as? Double), try XCTUnwrap(last["test_rmse"] as? Double), accuracy: 1e-5)
        let perTarget = try XCTUnwrap(report["per_target"] as? [String: [String: Double]])
        XCTAssertEqual(Set(perTarget.keys), ["speed", "angle", "load"])
        let meanR2 = perTarget.values.map { $0["r2"]! }.reduce(0, +) / 3
        XCTAssertEqual(meanR2, r2, accuracy: 1e-6)

        // predict: one column per target, in original units (not standardized): its errors give evaluate's RMSE.
        let predict = try PlexusProcess.plexus(["predict", run, "--input", test, "--output", path("out.csv")])
        XCTAssertEqual(predict.status, 0, predict.standardError)
        let (header, rows) = try readPredictions(path("out.csv"))
        XCTAssertEqual(header, ["speed", "angle", "load"])
        XCTAssertEqual(rows.count, 200)
        let truth = try String(contentsOfFile: test, encoding: .utf8).split(separator: "\n").dropFirst().map { line in
            line.split(separator: ",").map { Double($0)! }
        }
        for (index, name) in ["speed", "angle", "load"].enumerated() {
            let column = [1, 3, 5][index]
            let squares = zip(rows, truth).map { ($0[index] - $1[column]) * ($0[index] - $1[column]) }.reduce(0, +)
            XCTAssertEqual((squares / 200).squareRoot(), perTarget[name]!["rmse"]!, accuracy: 1e-3 * max(1, perTarget[name]!["rmse"]!),
                           name)
        }
    }

    func testMultiLabelClassification() throws {
        let train = writeCSV("train.csv", rows: 0..<600, multiLabel: true)
        let test = writeCSV("test.csv", rows: 600..<800, multiLabel: true)
        let configPath = config("labels.yaml", train: train, test: test, targets: "[p, q, r]", loss: "binary_cross_entropy")
        let run = try trainOnOneAndTwoRanks(configPath, name: "multilabel")
        let result = try summary(run)
        let subset = try XCTUnwrap(result["test_accuracy"] as? Double)
        let labels = try XCTUnwrap(result["test_label_accuracy"] as? Double)
        XCTAssertGreaterThan(subset, 0.8)
        XCTAssertGreaterThanOrEqual(labels, subset, "every row right implies each of its labels right")

        let evaluate = try PlexusProcess.plexus(["evaluate", run])
        XCTAssertEqual(evaluate.status, 0, evaluate.standardError)
        let report = try json(evaluate.standardOutput)
        XCTAssertEqual(try XCTUnwrap(report["accuracy"] as? Double), subset, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(report["label_accuracy"] as? Double), labels, accuracy: 1e-9)
        XCTAssertEqual(Set(try XCTUnwrap(report["per_target"] as? [String: Any]).keys), ["p", "q", "r"])

        let predict = try PlexusProcess.plexus(["predict", run, "--input", test, "--output", path("out.csv")])
        XCTAssertEqual(predict.status, 0, predict.standardError)
        let (header, rows) = try readPredictions(path("out.csv"))
        XCTAssertEqual(header, ["p", "q", "r"])
        XCTAssertTrue(rows.allSatisfy { $0.count == 3 && $0.allSatisfy { $0 >= 0 && $0 <= 1 } }, "probabilities")
    }

    /// npz input: float32 features with a [N, 3] y (regression), and stored uint8 features with integer classes.
    func testNumPyInput() throws {
        let regression = writeFile("npz.yaml", """
            data: {train: \(fixture("regression-train.npz")), test: \(fixture("regression-test.npz")), targets: [u, v, w],
                   normalize: standardize, normalize_targets: standardize}
            model: {layers: [{units: 32, activation: tanh}, {units: 3}]}
            loss: {name: huber, delta: 1.0}
            optimizer: {name: adam, lr: 0.01}
            training: {epochs: 40, batch_size: 16, threads: 1}
            """)
        let run = try trainOnOneAndTwoRanks(regression, name: "npz-regression")
        XCTAssertGreaterThan(try XCTUnwrap(summary(run)["test_r2"] as? Double), 0.8)
        let evaluate = try PlexusProcess.plexus(["evaluate", run, "--data", fixture("regression-test.npz")])
        XCTAssertEqual(evaluate.status, 0, evaluate.standardError)
        XCTAssertEqual(Set(try XCTUnwrap(json(evaluate.standardOutput)["per_target"] as? [String: Any]).keys), ["u", "v", "w"])
        let predict = try PlexusProcess.plexus(["predict", run, "--input", fixture("regression-test.npz"), "--output", path("p.csv")])
        XCTAssertEqual(predict.status, 0, predict.standardError)
        let (header, rows) = try readPredictions(path("p.csv"))
        XCTAssertEqual(header, ["u", "v", "w"])
        XCTAssertEqual(rows.count, 80)
        XCTAssertGreaterThan(rows.map { $0[0] }.reduce(0, +) / 80, 50, "targets are around 100: predictions are de-standardized")

        let classes = writeFile("blobs.yaml", """
            data: {train: \(fixture("blobs-uint8.npz")), test: \(fixture("blobs-uint8.npz")), normalize: scale}
            model: {layers: [{units: 16, activation: relu}, {units: 3}]}
            optimizer: {name: adam, lr: 0.01}
            training: {epochs: 20, batch_size: 20, threads: 1}
            """)
        let blobs = path("blobs")
        let result = try PlexusProcess.plexus(["train", classes, "--run-dir", blobs])
        XCTAssertEqual(result.status, 0, result.standardError)
        XCTAssertGreaterThan(try XCTUnwrap(summary(blobs)["test_accuracy"] as? Double), 0.9)
    }
}
