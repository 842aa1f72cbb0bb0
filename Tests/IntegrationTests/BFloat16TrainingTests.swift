import Foundation
import Kernels
import Support
@testable import Training
import XCTest

/// training.precision bf16: it learns, keeps deterministic mode's hash on every layout, and resumes in either precision.
final class BFloat16TrainingTests: FashionMNISTTestCase {
    var settings: [String] {
        ["--set", "data.train_limit=3000", "--set", "training.epochs=2",
         "--set", "training.batch_size=50", "--set", "training.threads=1",
         "--set", "model.layers=[{units: 64, activation: relu}, {units: 10}]", "--set", "training.precision=bf16"]
    }

    override func setUpWithError() throws {
        try super.setUpWithError()
        if let missing = MatrixPrecision.bf16.missingFeature {
            throw XCTSkip("bf16 products: this CPU (\(MatrixPrecision.cpuModel)) \(missing)")
        }
    }

    func testLearnsAndNamesItsKernel() throws {
        let run = directory + "/bf16"
        let result = try PlexusProcess.plexus(["train", config, "--run-dir", run] + settings)
        XCTAssertEqual(result.status, 0, result.standardError)
        XCTAssertTrue(result.standardOutput.contains("-bf16 kernel"), result.standardOutput)
        let summary = try summary(run)
        XCTAssertTrue((summary["kernel"] as? String ?? "").hasSuffix("-bf16"), "\(summary)")
        // Ten classes: chance is 0.1; two short epochs of this MLP reach well above 0.7 in fp32 and in bf16.
        let accuracy = try XCTUnwrap(summary["test_accuracy"] as? Double, "\(summary)")
        XCTAssertGreaterThan(accuracy, 0.7)
        // Not the fp32 run's bits: the products really read bf16.
        let fp32 = directory + "/fp32"
        XCTAssertEqual(try PlexusProcess.plexus(["train", config, "--run-dir", fp32] + settings
                                                + ["--set", "training.precision=fp32"]).status, 0)
        XCTAssertNotEqual(try sha(run), try sha(fp32))
    }

    func testDeterministicHashOnEveryLayout() throws {
        let deterministic = settings + ["--set", "training.deterministic=true", "--set", "training.deterministic_group=5"]
        var hashes: [String: String] = [:]
        let single = directory + "/1x1"
        XCTAssertEqual(try PlexusProcess.plexus(["train", config, "--run-dir", single] + deterministic).status, 0)
        hashes["1x1"] = try sha(single)
        let threaded = directory + "/1x2"
        let threadedResult = try PlexusProcess.mpirun(ranks: 1, options: ["--bind-to", "none"],
                                                      ["train", config, "--run-dir", threaded] + deterministic
                                                      + ["--set", "training.threads=2"])
        XCTAssertEqual(threadedResult.status, 0, threadedResult.standardError)
        hashes["1x2"] = try sha(threaded)
        let ranks = directory + "/2x1"
        let ranksResult = try PlexusProcess.mpirun(ranks: 2, ["train", config, "--run-dir", ranks] + deterministic)
        XCTAssertEqual(ranksResult.status, 0, ranksResult.standardError)
        hashes["2x1"] = try sha(ranks)
        XCTAssertEqual(Set(hashes.values).count, 1, "\(hashes)")
    }

    /// A checkpoint of a bf16 run resumes in fp32 and the other way round (its parameters are fp32 either way).
    func testResumesInTheOtherPrecision() throws {
        for (first, second) in [("bf16", "fp32"), ("fp32", "bf16")] {
            let run = directory + "/\(first)-then-\(second)"
            let start = try PlexusProcess.plexus(["train", config, "--run-dir", run] + settings
                                                 + ["--set", "training.precision=\(first)", "--set", "training.epochs=1"])
            XCTAssertEqual(start.status, 0, start.standardError)
            let resumed = try PlexusProcess.plexus(["train", config, "--run-dir", run, "--resume"] + settings
                                                   + ["--set", "training.precision=\(second)"])
            XCTAssertEqual(resumed.status, 0, resumed.standardError)
            XCTAssertTrue(resumed.standardOutput.contains("resuming from"), resumed.standardOutput)
            XCTAssertEqual(try summary(run)["epochs"] as? Int, 2)
        }
    }
}
