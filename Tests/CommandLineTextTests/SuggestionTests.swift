@testable import CommandLineText
import XCTest

/// The closest valid name a usage mistake suggests.
final class SuggestionTests: XCTestCase {
    func testEditDistanceCountsASwapOfNeighboursAsOneEdit() {
        XCTAssertEqual(editDistance(Array("trian"), Array("train")), 1)
        XCTAssertEqual(editDistance(Array("kitten"), Array("sitting")), 3)
        XCTAssertEqual(editDistance(Array(""), Array("gemm")), 4)
        XCTAssertEqual(editDistance(Array("step"), Array("step")), 0)
        XCTAssertEqual(editDistance(Array("ca"), Array("abc")), 3)
    }

    func testClosestName() {
        let subcommands = ["train", "evaluate", "predict", "plot", "bench", "config", "help"]
        XCTAssertEqual(closestName(to: "trian", among: subcommands), "train")
        XCTAssertEqual(closestName(to: "Train", among: subcommands), "train")
        XCTAssertEqual(closestName(to: "eval", among: subcommands), "evaluate")
        XCTAssertEqual(closestName(to: "predcit", among: subcommands), "predict")
        XCTAssertNil(closestName(to: "frobnicate", among: subcommands))
        XCTAssertNil(closestName(to: "x", among: subcommands))
        let options = ["--run-dir", "--set", "--progress", "--resume", "--help"]
        XCTAssertEqual(closestName(to: "--run-directory", among: options), "--run-dir")
        XCTAssertEqual(closestName(to: "--resum", among: options), "--resume")
        XCTAssertEqual(closestName(to: "--sets", among: options), "--set")
        XCTAssertNil(closestName(to: "--epochs", among: options))
        // The nearest of several close names wins; a tie goes to the first.
        XCTAssertEqual(closestName(to: "--step", among: ["--steps", "--step"]), "--step")
        XCTAssertEqual(closestName(to: "gem", among: ["gemm", "step", "allreduce"]), "gemm")
    }
}
