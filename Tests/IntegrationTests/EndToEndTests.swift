@testable import Formats
import Foundation
@testable import Training
import XCTest

/// Train → evaluate → predict through the binary, on CSV and on the real Fashion-MNIST files.
final class EndToEndTests: TemporaryDirectoryTestCase {

    /// Two separable blobs in CSV: training must learn them, and evaluate/predict must agree with summary.json.
    func testCSVTrainEvaluatePredict() throws {
        var generator = SystemRandomNumberGenerator()
        var rows = ["a,b,label"]
        var predictRows = ["a,b"]
        for index in 0..<400 {
            let label = index % 2
            let center: Double = label == 0 ? -1 : 1
            let a = center + Double.random(in: -0.6...0.6, using: &generator)
            let b = -center + Double.random(in: -0.6...0.6, using: &generator)
            rows.append("\(a),\(b),\(label)")
            if index < 10 { predictRows.append("\(a),\(b)") }
        }
        _ = FileManager.default.createFile(atPath: path("train.csv"), contents: Data((rows.joined(separator: "\n") + "\n").utf8))
        _ = FileManager.default.createFile(atPath: path("predict.csv"), contents: Data((predictRows.joined(separator: "\n") + "\n").utf8))
        _ = FileManager.default.createFile(atPath: path("config.yaml"), contents: Data("""
            seed: 3
            data: {train: \(path("train.csv")), test: \(path("train.csv")), normalize: standardize}
            model: {layers: [{units: 8, activation: tanh}, {units: 2}]}
            optimizer: {name: sgd, lr: 0.1, momentum: 0.9}
            training: {epochs: 5, batch_size: 16, threads: 1}
            """.utf8))
        let run = path("run")
        let train = try PlexusProcess.plexus(["train", path("config.yaml"), "--run-dir", run])
        XCTAssertEqual(train.status, 0, train.standardError)
        for name in ["config.yaml", "metrics.jsonl", "summary.json", "final.safetensors"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: (run as NSString).appendingPathComponent(name)), name)
        }
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run + "/summary.json"))) as! [String: Any]
        for key in ["world_size", "threads_per_rank", "epochs", "steps", "train_loss", "test_loss", "test_accuracy",
                    "samples_per_second", "wall_seconds", "param_sha256"] {
            XCTAssertNotNil(summary[key], key)
        }
        XCTAssertEqual(summary["world_size"] as? Int, 1)
        XCTAssertEqual(summary["steps"] as? Int, 5 * 25)
        let accuracy = try XCTUnwrap(summary["test_accuracy"] as? Double)
        XCTAssertGreaterThan(accuracy, 0.95)
        let metrics = try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(metrics.count, 5)
        let last = try JSONSerialization.jsonObject(with: Data(metrics.last!.utf8)) as! [String: Any]
        for key in ["epoch", "step", "lr", "train_loss", "test_loss", "test_accuracy", "samples_per_second", "elapsed_seconds", "train_seconds"] {
            XCTAssertNotNil(last[key], key)
        }
        // train_seconds counts from the first step, so start-up makes elapsed_seconds the larger.
        XCTAssertLessThanOrEqual(try XCTUnwrap(last["train_seconds"] as? Double), try XCTUnwrap(last["elapsed_seconds"] as? Double))

        // param_sha256 is the SHA-256 of the safetensors tensors in order.
        let saved = try SafeTensors.read(path: run + "/final.safetensors")
        XCTAssertEqual(saved.tensors.map(\.name), ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"])
        XCTAssertEqual(saved.tensors[0].shape, [8, 2])
        XCTAssertEqual(SafeTensors.sha256OfValues(saved.tensors), summary["param_sha256"] as? String)

        // evaluate on the run directory reproduces the final test accuracy.
        let evaluate = try PlexusProcess.plexus(["evaluate", run])
        XCTAssertEqual(evaluate.status, 0, evaluate.standardError)
        let evaluation = try JSONSerialization.jsonObject(with: Data(evaluate.standardOutput.utf8)) as! [String: Any]
        XCTAssertEqual(try XCTUnwrap(evaluation["accuracy"] as? Double), accuracy, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(evaluation["loss"] as? Double), try XCTUnwrap(summary["test_loss"] as? Double), accuracy: 1e-5)

        // predict writes one row per input row with the class the outputs favour.
        let predict = try PlexusProcess.plexus(["predict", run + "/final.safetensors", "--input", path("predict.csv"),
                                                "--output", path("out.csv")])
        XCTAssertEqual(predict.status, 0, predict.standardError)
        let lines = try String(contentsOfFile: path("out.csv"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.first, "output_0,output_1,predicted_class")
        XCTAssertEqual(lines.count, 11)
        let expected = (0..<10).map { $0 % 2 }
        let predicted = lines.dropFirst().map { Int($0.split(separator: ",").last!)! }
        XCTAssertEqual(predicted, expected)
    }

    /// A regression run (mse, one output) reports loss but no accuracy: in metrics.jsonl, the progress lines,
    /// summary.json and evaluate.
    func testRegressionReportsNoAccuracy() throws {
        var rows = ["x,y,label"]
        for index in 0..<200 {
            let x = Double(index % 20) / 10 - 1, y = Double(index % 7) / 7
            rows.append("\(x),\(y),\(0.5 * x - y + 0.25)")
        }
        _ = FileManager.default.createFile(atPath: path("train.csv"), contents: Data((rows.joined(separator: "\n") + "\n").utf8))
        _ = FileManager.default.createFile(atPath: path("config.yaml"), contents: Data("""
            data: {train: \(path("train.csv")), test: \(path("train.csv"))}
            model: {layers: [{units: 8, activation: tanh}, {units: 1}]}
            loss: mse
            training: {epochs: 3, batch_size: 20, threads: 1}
            """.utf8))
        let run = path("run")
        let train = try PlexusProcess.plexus(["train", path("config.yaml"), "--run-dir", run, "--progress", "plain"])
        XCTAssertEqual(train.status, 0, train.standardError)
        XCTAssertTrue(train.standardOutput.contains("test_loss"), train.standardOutput)
        XCTAssertFalse(train.standardOutput.contains("accuracy"), train.standardOutput)
        let metrics = try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(metrics.count, 3)
        for line in metrics {
            let record = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            XCTAssertNotNil(record["test_loss"])
            XCTAssertNil(record["test_accuracy"], String(line))
        }
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run + "/summary.json"))) as! [String: Any]
        XCTAssertNotNil(summary["test_loss"])
        XCTAssertNil(summary["test_accuracy"])
        let evaluate = try PlexusProcess.plexus(["evaluate", run])
        XCTAssertEqual(evaluate.status, 0, evaluate.standardError)
        let evaluation = try JSONSerialization.jsonObject(with: Data(evaluate.standardOutput.utf8)) as! [String: Any]
        XCTAssertNotNil(evaluation["loss"])
        XCTAssertNil(evaluation["accuracy"])
    }

    /// The real Fashion-MNIST IDX files (gzipped), a short run: learns well above chance.
    func testFashionMNISTShortRun() throws {
        guard FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") else {
            throw XCTSkip("dataset-fashion-mnist is not installed (./launch/test installs it)")
        }
        let run = path("fmnist")
        let result = try PlexusProcess.plexus([
            "train", PlexusProcess.root + "/Configs/fashion-mnist.yaml", "--run-dir", run,
            "--set", "data.train_limit=6000", "--set", "schedule={name: constant}", "--set", "training.epochs=3",
            "--set", "model.layers=[{units: 64, activation: relu}, {units: 10}]",
        ])
        XCTAssertEqual(result.status, 0, result.standardError)
        // Not a terminal: plain per-epoch lines (what a Slurm log shows).
        XCTAssertTrue(result.standardOutput.contains("epoch 3/3"), result.standardOutput)
        XCTAssertFalse(result.standardOutput.contains("\r"))
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run + "/summary.json"))) as! [String: Any]
        XCTAssertGreaterThan(try XCTUnwrap(summary["test_accuracy"] as? Double), 0.75)
        let config = try String(contentsOfFile: run + "/config.yaml", encoding: .utf8)
        XCTAssertTrue(config.contains("train_limit: 6000"))
    }
}
