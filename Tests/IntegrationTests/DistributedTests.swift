@testable import Formats
import Foundation
@testable import Training
import XCTest

/// Data parallelism through the real mpirun: the same weights on any layout, and no rank left hanging.
final class DistributedTests: FashionMNISTTestCase {
    /// A small net; 2990 samples in batches of 50 leave a short last batch of 40, and 50 splits unevenly over 3 ranks.
    var settings: [String] {
        ["--set", "data.train_limit=2990", "--set", "training.epochs=3", "--set", "training.batch_size=50",
         "--set", "model.layers=[{units: 32, activation: relu}, {units: 16, activation: tanh}, {units: 10}]",
         "--set", "optimizer={name: sgd, lr: 0.05, momentum: 0.9}"]
    }

    func loadWeights(_ run: String) throws -> [Float] {
        try SafeTensors.read(path: run + "/final.safetensors").tensors.flatMap(\.values)
    }

    func testSameWeightsOnOneTwoThreeRanksAndTwoThreads() throws {
        var runs: [(name: String, weights: [Float])] = []
        let single = directory + "/1x1"
        let result = try PlexusProcess.plexus(["train", config, "--run-dir", single, "--set", "training.threads=1"] + settings)
        XCTAssertEqual(result.status, 0, result.standardError)
        runs.append(("1 rank x 1 thread", try loadWeights(single)))

        for ranks in [2, 3] {
            let run = directory + "/\(ranks)x1"
            let result = try PlexusProcess.mpirun(ranks: ranks, ["train", config, "--run-dir", run, "--set", "training.threads=1"] + settings)
            XCTAssertEqual(result.status, 0, result.standardError)
            XCTAssertEqual(try summary(run)["world_size"] as? Int, ranks)
            runs.append(("\(ranks) ranks x 1 thread", try loadWeights(run)))
        }
        let threaded = directory + "/1x2"
        let threadedResult = try PlexusProcess.mpirun(ranks: 1, options: ["--bind-to", "none"],
                                                      ["train", config, "--run-dir", threaded, "--set", "training.threads=2"] + settings)
        XCTAssertEqual(threadedResult.status, 0, threadedResult.standardError)
        XCTAssertEqual(try summary(threaded)["threads_per_rank"] as? Int, 2)
        runs.append(("1 rank x 2 threads", try loadWeights(threaded)))

        let reference = runs[0].weights
        XCTAssertEqual(reference.count, 784 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10)
        for run in runs.dropFirst() {
            XCTAssertEqual(run.weights.count, reference.count)
            let difference = zip(run.weights, reference).map { abs($0 - $1) }.max()!
            print("max |Δweight| \(run.name) vs 1 rank x 1 thread: \(difference)")
            XCTAssertLessThanOrEqual(difference, 1e-5, run.name)
        }
        // Training did move the weights (so agreement is not trivial): the loss fell far below chance (ln 10 ≈ 2.3).
        XCTAssertLessThan(try XCTUnwrap(summary(single)["train_loss"] as? Double), 1.0)
    }

    /// One rank fails on its own (its data file is missing): the job ends promptly, status 2, that rank's message.
    func testErrorOnOneRankEndsTheJob() throws {
        let run = directory + "/fail"
        let mpirun = "/usr/bin/mpirun"
        let common = ["train", config, "--run-dir", run, "--set", "training.threads=1"] + settings
        let start = Date()
        let result = try PlexusProcess.run(mpirun, ["--oversubscribe", "-np", "1", PlexusProcess.binary] + common
                                           + [":", "-np", "1", PlexusProcess.binary] + common
                                           + ["--set", "data.train=\(directory)/missing/train"], timeout: 60)
        XCTAssertEqual(result.status, 2, result.standardError)
        XCTAssertLessThan(Date().timeIntervalSince(start), 30)
        XCTAssertTrue(result.standardError.contains("plexus: rank 1: \(directory)/missing/train"), result.standardError)
        XCTAssertFalse(result.standardError.contains("plexus: rank 0"), result.standardError)
    }

    /// Ranks started with different configs stop with a clear error instead of training apart.
    func testRanksWithDifferentConfigsStop() throws {
        let run = directory + "/disagree"
        let common = ["train", config, "--run-dir", run, "--set", "training.threads=1"] + settings
        let result = try PlexusProcess.run("/usr/bin/mpirun", ["--oversubscribe", "-np", "1", PlexusProcess.binary] + common
                                           + [":", "-np", "1", PlexusProcess.binary] + common + ["--set", "seed=99"], timeout: 60)
        XCTAssertEqual(result.status, 2, result.standardError)
        XCTAssertTrue(result.standardError.contains("ranks disagree"), result.standardError)
    }
}
