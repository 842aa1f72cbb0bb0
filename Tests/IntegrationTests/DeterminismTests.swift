import Foundation
import Support
@testable import Training
import XCTest

/// training.deterministic: the same param_sha256 on every ranks × threads layout, and across stop/resume.
final class DeterminismTests: FashionMNISTTestCase {
    /// 2990 samples in batches of 50 (groups of 8 × 6 + 2; the last batch 40): uneven over 3 and 4 ranks.
    var settings: [String] {
        ["--set", "data.train_limit=2990", "--set", "training.epochs=2", "--set", "training.batch_size=50",
         "--set", "training.deterministic=true", "--set", "training.deterministic_group=8",
         "--set", "model.layers=[{units: 40, activation: gelu}, {units: 24, activation: relu}, {units: 10}]",
         "--set", "optimizer={name: adamw, lr: 0.003}", "--set", "training.clip_grad_norm=1.0"]
    }

    func testSameHashOnEveryLayout() throws {
        var hashes: [String: String] = [:]
        let single = directory + "/1x1"
        let result = try PlexusProcess.plexus(["train", config, "--run-dir", single, "--set", "training.threads=1"] + settings)
        XCTAssertEqual(result.status, 0, result.standardError)
        hashes["1x1"] = try sha(single)
        let threaded = directory + "/1x2"
        let threadedResult = try PlexusProcess.mpirun(ranks: 1, options: ["--bind-to", "none"],
                                                      ["train", config, "--run-dir", threaded, "--set", "training.threads=2"] + settings)
        XCTAssertEqual(threadedResult.status, 0, threadedResult.standardError)
        hashes["1x2"] = try sha(threaded)
        for ranks in [2, 3] {
            let run = directory + "/\(ranks)x1"
            let result = try PlexusProcess.mpirun(ranks: ranks, ["train", config, "--run-dir", run, "--set", "training.threads=1"] + settings)
            XCTAssertEqual(result.status, 0, result.standardError)
            hashes["\(ranks)x1"] = try sha(run)
        }
        print("param_sha256 by layout: \(hashes.sorted { $0.key < $1.key })")
        XCTAssertEqual(Set(hashes.values).count, 1, "\(hashes)")

        // Without deterministic mode the layouts agree only to rounding: the test above is not vacuous.
        let loose = directory + "/loose3"
        let looseResult = try PlexusProcess.mpirun(ranks: 3, ["train", config, "--run-dir", loose, "--set", "training.threads=1"]
                                                   + settings + ["--set", "training.deterministic=false"])
        XCTAssertEqual(looseResult.status, 0, looseResult.standardError)
        let looseSingle = directory + "/loose1"
        XCTAssertEqual(try PlexusProcess.plexus(["train", config, "--run-dir", looseSingle, "--set", "training.threads=1"]
                                                + settings + ["--set", "training.deterministic=false"]).status, 0)
        XCTAssertNotEqual(try sha(loose), try sha(looseSingle))
    }

    /// Stopped on 1 rank (by --set'ting fewer epochs) and resumed on 3 ranks: the hash of an uninterrupted run.
    func testResumeOnAnotherLayoutIsBitIdentical() throws {
        let whole = directory + "/whole"
        XCTAssertEqual(try PlexusProcess.plexus(["train", config, "--run-dir", whole, "--set", "training.threads=1"] + settings).status, 0)
        let parted = directory + "/parted"
        let first = try PlexusProcess.plexus(["train", config, "--run-dir", parted, "--set", "training.threads=1"] + settings
                                             + ["--set", "checkpoint.every_steps=37", "--set", "training.epochs=2"])
        XCTAssertEqual(first.status, 0, first.standardError)
        // Remove the end-of-run checkpoints so the resume starts mid-epoch, at step 111.
        for file in Checkpoint.checkpointFiles(in: RunDirectory(parted)) where !file.hasSuffix("000000111.safetensors") {
            try FileManager.default.removeItem(atPath: file)
        }
        XCTAssertEqual(Checkpoint.checkpointFiles(in: RunDirectory(parted)).count, 1)
        let resumed = try PlexusProcess.mpirun(ranks: 3, ["train", config, "--run-dir", parted, "--resume", "--set", "training.threads=1"]
                                               + settings)
        XCTAssertEqual(resumed.status, 0, resumed.standardError)
        XCTAssertTrue(resumed.standardOutput.contains("step 111"), resumed.standardOutput)
        XCTAssertEqual(try sha(parted), try sha(whole))
    }
}
