@testable import Formats
import Foundation
@testable import Training
import XCTest

/// Every user mistake: exit status 2, exactly one line on stderr naming the file:line or key, no crash trace.
final class CommandLineErrorTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws { directory = try PlexusProcess.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    func write(_ name: String, _ text: String) -> String {
        let path = (directory as NSString).appendingPathComponent(name)
        FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        return path
    }

    func writeBytes(_ name: String, _ bytes: [UInt8]) -> String {
        let path = (directory as NSString).appendingPathComponent(name)
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }

    /// A valid CSV classification config around `train`.
    func csvConfig(train: String, layers: String = "[{units: 4, activation: relu}, {units: 3}]", extra: String = "") -> String {
        write("config.yaml", """
            data: {train: \(train)}
            model: {layers: \(layers)}
            training: {epochs: 1, batch_size: 2, threads: 1}
            \(extra)
            """)
    }

    func assertUserError(_ arguments: [String], mentions fragments: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let result = try PlexusProcess.plexus(arguments, file: file, line: line)
        XCTAssertEqual(result.status, 2, "exit status; stderr: \(result.standardError)", file: file, line: line)
        let lines = result.standardError.split(separator: "\n", omittingEmptySubsequences: true)
        XCTAssertEqual(lines.count, 1, "exactly one line on stderr, got: \(result.standardError)", file: file, line: line)
        for fragment in fragments {
            XCTAssertTrue(result.standardError.contains(fragment), "stderr \(result.standardError) lacks \(fragment)",
                          file: file, line: line)
        }
    }

    var goodCSV: String { write("good.csv", "x1,x2,label\n0.5,1,0\n1.5,2,1\n-1,0.25,2\n3,1,0\n") }

    func testConfigMistakes() throws {
        try assertUserError(["train", "/nonexistent/config.yaml"], mentions: ["/nonexistent/config.yaml", "no such file"])
        let syntax = write("syntax.yaml", "data:\n  train: [a, b\nmodel: {}\n")
        try assertUserError(["train", syntax], mentions: ["syntax.yaml:", "YAML syntax error"])
        let unknown = csvConfig(train: goodCSV, extra: "optimizer: {name: sgd, learning_rate: 0.1}")
        try assertUserError(["train", unknown, "--run-dir", directory + "/run"], mentions: ["config.yaml:4", "optimizer.learning_rate", "unknown key"])
        let config = csvConfig(train: goodCSV)
        try assertUserError(["train", config, "--set", "training.epochs=many"], mentions: ["training.epochs", "integer"])
        try assertUserError(["train", config, "--set", "optimizer.lr=0"], mentions: ["optimizer.lr", "greater than 0"])
        try assertUserError(["train", config, "--set", "model.layers=[{units: 0}]"], mentions: ["model.layers[0].units", "at least 1"])
        try assertUserError(["train", config, "--set", "model.layers=[{units: 3, activation: swish}]"],
                            mentions: ["model.layers[0].activation", "swish"])
        try assertUserError(["train", config, "--frobnicate"], mentions: ["--frobnicate"])
    }

    func testDataMistakes() throws {
        let nonNumeric = write("nonnumeric.csv", "x1,x2,label\n0.5,1,0\n1.5,abc,1\n")
        try assertUserError(["train", csvConfig(train: nonNumeric), "--run-dir", directory + "/r1"],
                            mentions: ["nonnumeric.csv:3", "abc", "x2"])
        let ragged = write("ragged.csv", "x1,x2,label\n0.5,1,0\n\n1.5,1\n")
        try assertUserError(["train", csvConfig(train: ragged), "--run-dir", directory + "/r2"], mentions: ["ragged.csv:4"])
        let badLabel = write("badlabel.csv", "x1,x2,label\n0.5,1,0\n1.5,2,7\n")
        try assertUserError(["train", csvConfig(train: badLabel), "--run-dir", directory + "/r3"],
                            mentions: ["badlabel.csv:3", "label 7", "0..<3"])
        try assertUserError(["train", csvConfig(train: directory + "/absent.csv"), "--run-dir", directory + "/r4"],
                            mentions: ["absent.csv"])

        // IDX: wrong magic and truncated data.
        writeBytes("bad-labels-idx1-ubyte", [0, 0, 8, 1, 0, 0, 0, 2, 0, 1])
        writeBytes("bad-images-idx3-ubyte", [1, 2, 3, 4, 0, 0, 0, 2])
        let idxConfig = write("idx.yaml", "data: {format: idx, train: \(directory)/bad}\nmodel: {layers: [{units: 10}]}\n")
        try assertUserError(["train", idxConfig, "--run-dir", directory + "/r5"], mentions: ["bad-images-idx3-ubyte", "magic"])
        writeBytes("bad-images-idx3-ubyte", [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3])
        try assertUserError(["train", idxConfig, "--run-dir", directory + "/r6"], mentions: ["bad-images-idx3-ubyte", "truncated"])
    }

    func testValidationEarlyStoppingAndDropoutMistakes() throws {
        let config = csvConfig(train: goodCSV)
        try assertUserError(["train", config, "--set", "data.validation_fraction=1.5"],
                            mentions: ["data.validation_fraction", "less than 1"])
        try assertUserError(["train", config, "--set", "data.validation_fraction=0.1", "--run-dir", directory + "/v1"],
                            mentions: ["data.validation_fraction: 0.1 of 4 training rows leaves no validation row"])
        try assertUserError(["train", config, "--set", "data.validation_fraction=0.5", "--set", "training.batch_size=3",
                             "--run-dir", directory + "/v2"], mentions: ["data.validation_fraction", "fewer than one global batch"])
        try assertUserError(["train", config, "--set", "data.validation=\(goodCSV)", "--set", "data.validation_fraction=0.5"],
                            mentions: ["not both"])
        try assertUserError(["train", config, "--set", "training.early_stopping={patience: 2}"],
                            mentions: ["training.early_stopping", "needs validation data"])
        try assertUserError(["train", config, "--set", "data.validation=\(goodCSV)", "--set", "training.early_stopping={metric: val_rmse}",
                             "--run-dir", directory + "/v3"],
                            mentions: ["training.early_stopping.metric", "val_rmse", "val_loss, val_accuracy"])
        try assertUserError(["train", config, "--set", "data.validation=\(directory)/absent.csv", "--run-dir", directory + "/v4"],
                            mentions: ["absent.csv"])
        let narrow = write("narrow.csv", "x1,label\n0.5,0\n")
        try assertUserError(["train", config, "--set", "data.validation=\(narrow)", "--run-dir", directory + "/v5"],
                            mentions: ["narrow.csv", "1 features", "2"])
        try assertUserError(["train", config, "--set", "model.layers=[{units: 4, activation: relu, dropout: 1}, {units: 3}]"],
                            mentions: ["model.layers[0].dropout", "less than 1"])
    }

    func testSafetensorsMistakes() throws {
        let corrupt = writeBytes("corrupt.safetensors", [200, 0, 0, 0, 0, 0, 0, 0] + Array("{\"a\":".utf8))
        try assertUserError(["train", csvConfig(train: goodCSV, layers: "[{units: 3}]"), "--set", "model.init_from=\(corrupt)",
                             "--run-dir", directory + "/r7"], mentions: ["corrupt.safetensors", "corrupt safetensors"])
        try assertUserError(["evaluate", corrupt], mentions: ["corrupt.safetensors", "corrupt safetensors"])
        // A tensor of the wrong shape is named.
        let wrongShape = (directory as NSString).appendingPathComponent("wrong.safetensors")
        try SafeTensors.write([TensorRecord(name: "layers.0.weight", shape: [3, 5], values: [Float](repeating: 0, count: 15)),
                               TensorRecord(name: "layers.0.bias", shape: [3], values: [0, 0, 0])], metadata: [:], to: wrongShape)
        let config = csvConfig(train: goodCSV, layers: "[{units: 3}]")
        try assertUserError(["train", config, "--set", "model.init_from=\(wrongShape)", "--run-dir", directory + "/r8"],
                            mentions: ["wrong.safetensors", "layers.0.weight", "[3, 5]", "[3, 2]"])
    }
}
