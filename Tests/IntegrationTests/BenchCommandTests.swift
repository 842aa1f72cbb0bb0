import Foundation
@testable import Support
import XCTest

/// `plexus bench` runs and reports well-formed numbers (what they are is for bench/, not for tests).
final class BenchCommandTests: FashionMNISTTestCase {
    private func jsonObject(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8))
        return try XCTUnwrap(object as? [String: Any], "not a JSON object: \(text)", file: file, line: line)
    }

    /// The parts of the step add up to the step, and waiting is measured apart only when asked (`--split-wait`)
    /// and where there is someone to wait for.
    private func checkStep(_ result: PlexusProcess.Result, worldSize: Int, steps: Int, splitWait: Bool = false,
                           file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(result.status, 0, result.standardError, file: file, line: line)
        let step = try jsonObject(result.standardOutput, file: file, line: line)
        XCTAssertEqual(step["world_size"] as? Int, worldSize, file: file, line: line)
        XCTAssertEqual(step["steps"] as? Int, steps, file: file, line: line)
        let parts = ["data_ms", "forward_ms", "backward_ms", "wait_ms", "reduce_ms", "optimizer_ms"]
        let values = try parts.map { try XCTUnwrap(step[$0] as? Double, $0, file: file, line: line) }
        let total = try XCTUnwrap(step["step_ms"] as? Double, file: file, line: line)
        XCTAssertEqual(values.reduce(0, +), total, accuracy: 0.001 * Double(parts.count), file: file, line: line)
        XCTAssertGreaterThan(values[1], 0, "forward", file: file, line: line)
        if worldSize > 1 && splitWait {
            XCTAssertGreaterThan(values[3], 0, "the barrier's wait", file: file, line: line)
        } else {
            XCTAssertEqual(values[3], 0, "wait without a barrier", file: file, line: line)
        }
        XCTAssertGreaterThan(try XCTUnwrap(step["samples_per_second"] as? Double), 0, file: file, line: line)
        XCTAssertGreaterThan(try XCTUnwrap(step["peak_rss_mib"] as? Double), 50, "holds the dataset", file: file, line: line)
        // The products' FLOPs per step over the step's time: the rate and its fraction of the GEMM peak agree.
        let rate = try XCTUnwrap(step["step_gflops_per_rank"] as? Double, file: file, line: line)
        let peak = try XCTUnwrap(step["gemm_peak_gflops"] as? Double, file: file, line: line)
        let utilization = try XCTUnwrap(step["mfu"] as? Double, file: file, line: line)
        XCTAssertGreaterThan(rate, 0, file: file, line: line)
        XCTAssertGreaterThan(peak, 0, file: file, line: line)
        XCTAssertEqual(utilization, rate / peak, accuracy: 1e-9, file: file, line: line)
        let gigaflop = try XCTUnwrap(step["step_product_gflop"] as? Double, file: file, line: line)
        XCTAssertEqual(rate, gigaflop / (total / 1000) / Double(worldSize), accuracy: rate * 1e-6, file: file, line: line)
    }

    func testStepOnOneAndTwoRanks() throws {
        let arguments = ["bench", "step", config, "--steps", "4", "--warmup", "1", "--json"]
        try checkStep(try PlexusProcess.plexus(arguments + ["--set", "training.threads=1"]), worldSize: 1, steps: 4)
        try checkStep(try PlexusProcess.mpirun(ranks: 2, arguments), worldSize: 2, steps: 4)
        try checkStep(try PlexusProcess.mpirun(ranks: 2, arguments + ["--split-wait"]), worldSize: 2, steps: 4, splitWait: true)
    }

    func testGemmReportsEveryTrainingShapeAtTheGivenBatch() throws {
        let result = try PlexusProcess.plexus(["bench", "gemm", "--json", "--threads", "1", "--batch", "5",
                                                       "--run-seconds", "0.005"])
        XCTAssertEqual(result.status, 0, result.standardError)
        let rows = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [[String: Any]])
        // Eight products per net (the first layer has no input gradient), none shared between the two nets.
        XCTAssertEqual(rows.count, 16)
        for row in rows {
            XCTAssertEqual(row["threads"] as? Int, 1)
            XCTAssertGreaterThan(try XCTUnwrap(row["gflops"] as? Double), 0)
            let m = try XCTUnwrap(row["m"] as? Int), k = try XCTUnwrap(row["k"] as? Int)
            // The batch is the rows of forward and input-gradient products and the depth of weight gradients.
            XCTAssertTrue(m == 5 || k == 5, "\(row)")
        }
    }

    func testAllreduceOverTwoRanks() throws {
        // The full range moves about 1 GiB per size; the suite needs only that every size up to the largest is timed.
        let result = try PlexusProcess.mpirun(ranks: 2, ["bench", "allreduce", "--json", "--max-bytes", "1048576", "--calls", "10"])
        XCTAssertEqual(result.status, 0, result.standardError)
        let rows = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [[String: Any]])
        XCTAssertEqual(rows.map { $0["bytes"] as? Int }, (12...20).map { 1 << $0 })
        for row in rows {
            XCTAssertEqual(row["world_size"] as? Int, 2)
            XCTAssertEqual(row["calls"] as? Int, 10)
            XCTAssertGreaterThan(try XCTUnwrap(row["microseconds"] as? Double), 0)
        }
    }

    func testBadArgumentsExitTwoWithOneLine() throws {
        for arguments in [["bench", "gemm", "--batch", "0"], ["bench", "gemm", "--run-seconds", "0"],
                          ["bench", "step", config, "--steps", "0"],
                          ["bench", "allreduce", "--max-bytes", "5000"], ["bench", "allreduce", "--calls", "0"]] {
            let result = try PlexusProcess.plexus(arguments)
            XCTAssertEqual(result.status, 2, arguments.joined(separator: " "))
            XCTAssertEqual(result.standardError.split(separator: "\n").count, 1, result.standardError)
            XCTAssertTrue(result.standardError.hasPrefix("plexus: --"), result.standardError)
        }
    }
}
