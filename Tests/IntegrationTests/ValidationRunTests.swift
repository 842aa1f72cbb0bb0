@testable import Formats
import Foundation
import Support
@testable import Training
import XCTest

/// Validation split, early stopping, best.safetensors and dropout through the binary and mpirun.
final class ValidationRunTests: FashionMNISTTestCase {
    /// 900 training and 300 validation images for a 784-256-10 net with Adam at a high constant rate: validation
    /// loss bottoms out after a few epochs while the training loss keeps falling.
    func overfittingConfig(epochs: Int = 60) -> String {
        let path = directory + "/overfit.yaml"
        _ = FileManager.default.createFile(atPath: path, contents: Data("""
            seed: 3
            data: {train: /usr/share/datasets/fashion-mnist/train, train_limit: 1200, validation_fraction: 0.25}
            model: {layers: [{units: 256, activation: relu}, {units: 10}]}
            optimizer: {name: adam, lr: 0.002}
            training: {epochs: \(epochs), batch_size: 50, threads: 1, early_stopping: {metric: val_loss, patience: 3}}
            checkpoint: {keep: 100}
            """.utf8))
        return path
    }

    func metrics(_ run: String) throws -> [[String: Any]] {
        try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
    }

    /// The weights and biases of a safetensors file (model or checkpoint), without the optimizer state.
    func layerTensors(_ path: String) throws -> [TensorRecord] {
        try SafeTensors.read(path: path).tensors.filter { $0.name.hasPrefix("layers.") }
    }

    func testEarlyStoppingOnAnOverfittingNetAtOneAndTwoRanks() throws {
        let config = overfittingConfig()
        var bestEpochs: [Int] = []
        for ranks in [1, 2] {
            let run = directory + "/ranks\(ranks)"
            let result = ranks == 1 ? try PlexusProcess.plexus(["train", config, "--run-dir", run, "--progress", "plain"])
                : try PlexusProcess.mpirun(ranks: 2, ["train", config, "--run-dir", run, "--progress", "plain"])
            XCTAssertEqual(result.status, 0, result.standardError)
            XCTAssertTrue(result.standardOutput.contains("900 train / 300 validation samples"), result.standardOutput)
            XCTAssertTrue(result.standardOutput.contains("early stopping after epoch"), result.standardOutput)
            let summary = try summary(run)
            let epochs = try XCTUnwrap(summary["epochs"] as? Int), best = try XCTUnwrap(summary["best_epoch"] as? Int)
            print("ranks \(ranks): stopped after epoch \(epochs) of \(summary["epochs_allowed"] ?? "?"), best epoch \(best), "
                + "val_loss \(summary["best_value"] ?? "?")")
            XCTAssertEqual(summary["stopped_early"] as? Bool, true)
            XCTAssertEqual(summary["epochs_allowed"] as? Int, 60)
            XCTAssertLessThan(epochs, 30, "stops well before its limit")
            XCTAssertEqual(best, epochs - 3, "patience 3")
            XCTAssertEqual(summary["best_metric"] as? String, "val_loss")
            XCTAssertEqual(summary["steps"] as? Int, epochs * 18)
            // metrics.jsonl: val_loss per epoch, lowest at the best epoch; the training loss kept falling past it.
            let lines = try metrics(run)
            XCTAssertEqual(lines.count, epochs)
            let validation = lines.map { $0["val_loss"] as! Double }
            XCTAssertEqual(validation.firstIndex(of: validation.min()!)! + 1, best)
            XCTAssertEqual(validation.min()!, try XCTUnwrap(summary["best_value"] as? Double))
            XCTAssertNotNil(lines.last?["val_accuracy"])
            XCTAssertLessThan(lines.last!["train_loss"] as! Double, lines[best - 1]["train_loss"] as! Double)
            // best.safetensors holds the best epoch's weights: those of the checkpoint saved after it.
            let atBest = Checkpoint.checkpointFiles(in: RunDirectory(run)).first { $0.hasSuffix(String(format: "%09d.safetensors", best * 18)) }
            XCTAssertEqual(try layerTensors(run + "/best.safetensors"), try layerTensors(try XCTUnwrap(atBest)))
            XCTAssertNotEqual(try layerTensors(run + "/best.safetensors"), try layerTensors(run + "/final.safetensors"))
            XCTAssertEqual(try String(contentsOfFile: run + "/validation_rows.txt", encoding: .utf8).split(separator: "\n").count, 300)
            bestEpochs.append(best)
        }
        XCTAssertEqual(bestEpochs[0], bestEpochs[1], "the same best epoch at 1 and 2 ranks")

        // evaluate on the run directory uses best.safetensors, says so on stderr, and keeps stdout one JSON object.
        let run = directory + "/ranks1"
        let evaluate = try PlexusProcess.plexus(["evaluate", run, "--data", "/usr/share/datasets/fashion-mnist/t10k"])
        XCTAssertEqual(evaluate.status, 0, evaluate.standardError)
        XCTAssertEqual(evaluate.standardError, "plexus: used \(run)/best.safetensors (the best validation epoch's weights)\n")
        let report = try JSONSerialization.jsonObject(with: Data(evaluate.standardOutput.utf8)) as! [String: Any]
        XCTAssertEqual(report["model"] as? String, run + "/best.safetensors")
        XCTAssertEqual(report["samples"] as? Int, 10000)
        // A file argument is used as given, silently.
        let final = try PlexusProcess.plexus(["evaluate", run + "/final.safetensors", "--data", "/usr/share/datasets/fashion-mnist/t10k"])
        XCTAssertEqual(final.standardError, "")
        XCTAssertNotEqual((try JSONSerialization.jsonObject(with: Data(final.standardOutput.utf8)) as! [String: Any])["loss"] as? Double,
                          report["loss"] as? Double)
    }

    /// Stopped and resumed (between the best epoch and the stop, before the best epoch, and after the stop): the
    /// same stop epoch, best epoch, best.safetensors and final weights as the uninterrupted run.
    func testResumeAcrossTheStopPoint() throws {
        let config = overfittingConfig()
        let whole = directory + "/whole"
        XCTAssertEqual(try PlexusProcess.plexus(["train", config, "--run-dir", whole]).status, 0)
        let epochs = try XCTUnwrap(summary(whole)["epochs"] as? Int), best = try XCTUnwrap(summary(whole)["best_epoch"] as? Int)
        let bestBytes = try Data(contentsOf: URL(fileURLWithPath: whole + "/best.safetensors"))
        XCTAssertGreaterThan(best, 3)
        // Resume from after epoch `from` (its checkpoint only); without best.safetensors when it is not yet written.
        for (from, keepBest) in [(best + 1, true), (best - 2, false), (epochs, true)] {
            let parted = directory + "/from\(from)"
            try FileManager.default.copyItem(atPath: whole, toPath: parted)
            for file in Checkpoint.checkpointFiles(in: RunDirectory(parted)) where !file.hasSuffix(String(format: "%09d.safetensors", from * 18)) {
                try FileManager.default.removeItem(atPath: file)
            }
            XCTAssertEqual(Checkpoint.checkpointFiles(in: RunDirectory(parted)).count, 1)
            for name in ["summary.json", "final.safetensors"] + (keepBest ? [] : ["best.safetensors"]) {
                try FileManager.default.removeItem(atPath: parted + "/" + name)
            }
            let resumed = try PlexusProcess.plexus(["train", config, "--run-dir", parted, "--resume", "--progress", "plain"])
            XCTAssertEqual(resumed.status, 0, resumed.standardError)
            XCTAssertTrue(resumed.standardOutput.contains("step \(from * 18))"), resumed.standardOutput)
            let trained = resumed.standardOutput.split(separator: "\n").filter { $0.hasPrefix("epoch ") }.count
            XCTAssertEqual(trained, epochs - from, "from epoch \(from)")
            let summary = try summary(parted)
            XCTAssertEqual(summary["epochs"] as? Int, epochs, "from epoch \(from)")
            XCTAssertEqual(summary["best_epoch"] as? Int, best, "from epoch \(from)")
            XCTAssertEqual(summary["stopped_early"] as? Bool, true)
            XCTAssertEqual(try sha(parted), try sha(whole), "from epoch \(from)")
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: parted + "/best.safetensors")), bestBytes, "from epoch \(from)")
            XCTAssertEqual(try metrics(parted).count, epochs)
        }
    }

    /// Deterministic mode with a held-out split and dropout: the same held-out rows, validation loss and weights on
    /// 1×1, 2×1 and 3×1; dropout 0 gives other weights.
    func testSplitAndDropoutAreTheSameOnEveryLayout() throws {
        let settings = ["--set", "data.train_limit=2990", "--set", "data.validation_fraction=0.1", "--set", "data.test=null",
                        "--set", "training.epochs=2", "--set", "training.batch_size=50", "--set", "training.threads=1",
                        "--set", "training.deterministic=true", "--set", "training.deterministic_group=8",
                        "--set", "optimizer={name: adamw, lr: 0.003}", "--set", "schedule={name: constant}"]
        func layers(_ rate: Double) -> [String] {
            ["--set", "model.layers=[{units: 40, activation: gelu, dropout: \(rate)}, {units: 24, activation: relu, dropout: \(rate)}, {units: 10}]"]
        }
        var hashes: [String: String] = [:]
        var validationLosses: [Double] = []
        var heldOut: Set<String> = []
        for ranks in [1, 2, 3] {
            let run = directory + "/\(ranks)x1"
            let arguments = ["train", config, "--run-dir", run] + settings + layers(0.3)
            let result = ranks == 1 ? try PlexusProcess.plexus(arguments) : try PlexusProcess.mpirun(ranks: ranks, arguments)
            XCTAssertEqual(result.status, 0, result.standardError)
            hashes["\(ranks)x1"] = try sha(run)
            validationLosses.append(try XCTUnwrap(summary(run)["val_loss"] as? Double))
            let rows = try String(contentsOfFile: run + "/validation_rows.txt", encoding: .utf8)
            XCTAssertEqual(rows.split(separator: "\n").count, 299)
            heldOut.insert(rows)
        }
        let plain = directory + "/nodropout"
        XCTAssertEqual(try PlexusProcess.plexus(["train", config, "--run-dir", plain] + settings + layers(0)).status, 0)
        print("dropout 0.3 param_sha256 by layout: \(hashes.sorted { $0.key < $1.key }); dropout 0: \(try sha(plain))")
        XCTAssertEqual(Set(hashes.values).count, 1, "\(hashes)")
        XCTAssertNotEqual(try sha(plain), hashes["1x1"])
        XCTAssertEqual(heldOut.count, 1, "the same held-out rows on every layout")
        XCTAssertEqual(heldOut.first, try String(contentsOfFile: plain + "/validation_rows.txt", encoding: .utf8))
        for loss in validationLosses { XCTAssertEqual(loss, validationLosses[0], accuracy: 1e-12 * loss) }
    }

    /// On a CSV run with validation data, predict and evaluate on the run directory use best.safetensors and say so
    /// on stderr; their outputs are those of that file named directly.
    func testPredictAndEvaluateOnARunDirectoryUseTheBestWeights() throws {
        var rows = ["a,b,label"], inputs = ["a,b"]
        for index in 0..<300 {
            // Two blobs around (−1, 1) and (1, −1), spread by fixed pseudo-random offsets.
            let label = index % 2, center: Double = label == 0 ? -1 : 1
            let a = center + 0.7 * sin(Double(index) * 1.7), b = -center + 0.7 * cos(Double(index) * 2.3)
            rows.append("\(a),\(b),\(label)")
            if index < 12 { inputs.append("\(a),\(b)") }
        }
        let train = directory + "/train.csv", input = directory + "/input.csv", config = directory + "/csv.yaml"
        try (rows.joined(separator: "\n") + "\n").write(toFile: train, atomically: true, encoding: .utf8)
        try (inputs.joined(separator: "\n") + "\n").write(toFile: input, atomically: true, encoding: .utf8)
        try """
            seed: 2
            data: {train: \(train), test: \(train), normalize: standardize, validation_fraction: 0.2}
            model: {layers: [{units: 8, activation: tanh, dropout: 0.1}, {units: 2}]}
            optimizer: {name: sgd, lr: 0.05}
            training: {epochs: 6, batch_size: 16, threads: 1}
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let run = directory + "/csv"
        let trained = try PlexusProcess.plexus(["train", config, "--run-dir", run])
        XCTAssertEqual(trained.status, 0, trained.standardError)
        XCTAssertTrue(trained.standardOutput.contains("240 train / 60 validation / 300 test samples"), trained.standardOutput)
        XCTAssertNotNil(try summary(run)["best_epoch"] as? Int)
        XCTAssertEqual(try summary(run)["stopped_early"] as? Bool, false)
        let note = "plexus: used \(run)/best.safetensors (the best validation epoch's weights)\n"
        let predicted = try PlexusProcess.plexus(["predict", run, "--input", input])
        XCTAssertEqual(predicted.status, 0, predicted.standardError)
        XCTAssertEqual(predicted.standardError, note)
        XCTAssertEqual(predicted.standardOutput.split(separator: "\n").count, 13)
        let direct = try PlexusProcess.plexus(["predict", run + "/best.safetensors", "--input", input])
        XCTAssertEqual(direct.standardOutput, predicted.standardOutput)
        XCTAssertEqual(direct.standardError, "")
        let evaluated = try PlexusProcess.plexus(["evaluate", run])
        XCTAssertEqual(evaluated.standardError, note)
        let report = try JSONSerialization.jsonObject(with: Data(evaluated.standardOutput.utf8)) as! [String: Any]
        XCTAssertGreaterThan(try XCTUnwrap(report["accuracy"] as? Double), 0.9)
    }

    /// Bad split or early-stopping settings under mpirun: status 2, one line, every rank ends.
    func testBadValidationSettingsEndEveryRank() throws {
        let result = try PlexusProcess.mpirun(ranks: 2, ["train", config, "--run-dir", directory + "/bad", "--set", "data.train_limit=300",
                                                         "--set", "data.validation_fraction=0.9"])
        XCTAssertEqual(result.status, 2, result.standardError)
        let lines = result.standardError.split(separator: "\n").filter { $0.hasPrefix("plexus") }
        XCTAssertEqual(lines.count, 1, result.standardError)
        XCTAssertTrue(result.standardError.contains("data.validation_fraction: 0.9 of 300 training rows leaves 30 for training, "
            + "fewer than one global batch (training.batch_size 128)"), result.standardError)
    }
}
