@testable import DataParallel
@testable import Formats
import Foundation
import Support
@testable import Training
import XCTest

/// The node-shared reduction, the bucketed exchange between nodes and gradient compression, through the real mpirun.
/// `distributed.shared_memory: false` makes every rank a node of its own, so one machine runs the across-nodes path.
final class GradientExchangeTests: FashionMNISTTestCase {
    /// 2990 samples in batches of 50 (uneven over 3 ranks, a short last batch); clipping on, so the shared norm counts.
    var settings: [String] {
        ["--set", "data.train_limit=2990", "--set", "training.epochs=2", "--set", "training.batch_size=50",
         "--set", "training.threads=1", "--set", "training.clip_grad_norm=0.5", "--progress", "plain",
         "--set", "model.layers=[{units: 64, activation: relu}, {units: 48, activation: tanh}, {units: 10}]",
         "--set", "optimizer={name: adam, lr: 0.003}"]
    }
    let plain = ["--set", "distributed.shared_memory=false", "--set", "distributed.bucket_mb=1000"]

    func train(_ name: String, ranks: Int, options: [String] = [], _ extra: [String] = []) throws -> (weights: [Float], output: String) {
        let run = directory + "/" + name
        let result = try PlexusProcess.mpirun(ranks: ranks, options: options, ["train", config, "--run-dir", run] + settings + extra)
        XCTAssertEqual(result.status, 0, "\(name): \(result.standardError)")
        return (try SafeTensors.read(path: run + "/final.safetensors").tensors.flatMap(\.values), result.standardOutput)
    }

    func assertClose(_ a: [Float], _ b: [Float], _ what: String) {
        XCTAssertEqual(a.count, b.count, what)
        let difference = zip(a, b).map { abs($0 - $1) }.max() ?? .infinity
        print("max |Δweight| \(what): \(difference)")
        XCTAssertLessThanOrEqual(difference, 1e-5, what)
        XCTAssertNotEqual(a, [Float](repeating: 0, count: a.count))
    }

    /// Shared memory equals the plain allreduce: bit for bit at 2 ranks, to float rounding at 3 and 4, bound or not.
    func testSharedMemoryMatchesPlainAllreduce() throws {
        for binding in [[], ["--bind-to", "none"]] {
            let label = binding.isEmpty ? "default binding" : "bind-to none"
            let reference = try train("plain2\(binding.count)", ranks: 2, options: binding, plain)
            XCTAssertTrue(reference.output.contains("gradient reduction: one float allreduce"), reference.output)
            let shared = try train("shared2\(binding.count)", ranks: 2, options: binding)
            XCTAssertTrue(shared.output.contains("gradient reduction: node shared memory (2 ranks per node"), shared.output)
            XCTAssertEqual(shared.weights, reference.weights, "2 ranks, \(label)")
            // More ranks than cores: the binding decides only where ranks run, so one binding is enough there.
            guard binding.isEmpty else { continue }
            for ranks in [3] {
                let plainRun = try train("plain\(ranks)\(binding.count)", ranks: ranks, options: binding, plain)
                let sharedRun = try train("shared\(ranks)\(binding.count)", ranks: ranks, options: binding)
                XCTAssertTrue(sharedRun.output.contains("(\(ranks) ranks per node"), sharedRun.output)
                assertClose(sharedRun.weights, plainRun.weights, "\(ranks) ranks, \(label)")
            }
        }
    }

    /// Buckets started during back-propagation equal one buffer after it: bit for bit at 2 ranks, to rounding at 3.
    func testBucketedMatchesOneBuffer() throws {
        let bucketed = ["--set", "distributed.shared_memory=false", "--set", "distributed.bucket_mb=0"]
        let two = try train("bucketed2", ranks: 2, bucketed)
        XCTAssertTrue(two.output.contains("3 bucket(s) overlapped"), two.output)
        XCTAssertEqual(two.weights, try train("one2", ranks: 2, plain).weights)
        let three = try train("bucketed3", ranks: 3, bucketed)
        assertClose(three.weights, try train("one3", ranks: 3, plain).weights, "3 ranks, bucketed vs one buffer")
    }

    /// bfloat16 and PowerSGD between "nodes" still train: the loss falls as far as uncompressed, within a margin.
    func testCompressionConverges() throws {
        let separate = ["--set", "distributed.shared_memory=false"]
        let exact = try train("exact", ranks: 2, separate)
        let exactLoss = try XCTUnwrap(summary(directory + "/exact")["train_loss"] as? Double)
        for (name, compression) in [("bf16", ["--set", "distributed.gradient_compression=bf16"]),
                                    ("powersgd", ["--set", "distributed.gradient_compression=powersgd",
                                                  "--set", "distributed.powersgd_rank=2"])] {
            let run = try train(name, ranks: 2, separate + compression)
            XCTAssertTrue(run.output.contains(name == "bf16" ? "bfloat16" : "PowerSGD rank 2 (2 matrices compressed)"), run.output)
            XCTAssertNotEqual(run.weights, exact.weights, "\(name) compressed nothing")
            let loss = try XCTUnwrap(summary(directory + "/" + name)["train_loss"] as? Double)
            print("train loss \(name) \(loss), uncompressed \(exactLoss)")
            XCTAssertLessThan(loss, 1.0, name)
            XCTAssertLessThan(loss, exactLoss * 1.25, name)
        }
    }

    /// With PowerSGD on, a run stopped mid-way and resumed on the same layout ends bit-identical: its error feedback
    /// and Q are in the checkpoint. Resuming without them (checkpoint from plain training) is refused nowhere but differs.
    func testResumeWithCompressionIsExact() throws {
        let compressed = ["--set", "distributed.shared_memory=false", "--set", "distributed.gradient_compression=powersgd",
                          "--set", "distributed.powersgd_rank=2"]
        let whole = try train("whole", ranks: 2, compressed)
        let parted = directory + "/parted"
        let first = try PlexusProcess.mpirun(ranks: 2, ["train", config, "--run-dir", parted] + settings + compressed
                                             + ["--set", "checkpoint.every_steps=37"])
        XCTAssertEqual(first.status, 0, first.standardError)
        for file in Checkpoint.checkpointFiles(in: RunDirectory(parted)) where !file.hasSuffix("000000074.safetensors") {
            try FileManager.default.removeItem(atPath: file)
        }
        let saved = try XCTUnwrap(Checkpoint.newestValid(in: RunDirectory(parted)).loaded)
        XCTAssertEqual(Set(saved.tensors.map(\.name).filter { $0.hasPrefix("compression.") }),
                       ["compression.powersgd.q", "compression.powersgd.error.0", "compression.powersgd.error.1"])
        let resumed = try PlexusProcess.mpirun(ranks: 2, ["train", config, "--run-dir", parted, "--resume"] + settings + compressed)
        XCTAssertEqual(resumed.status, 0, resumed.standardError)
        XCTAssertTrue(resumed.standardOutput.contains("step 74"), resumed.standardOutput)
        XCTAssertEqual(try SafeTensors.read(path: parted + "/final.safetensors").tensors.flatMap(\.values), whole.weights)
    }

    /// The node-shared reduction keeps the resume guarantee: optimizer state stepped in slices is gathered for the checkpoint.
    func testSharedMemoryResumeIsExact() throws {
        let whole = try train("swhole", ranks: 2)
        let parted = directory + "/sparted"
        XCTAssertEqual(try PlexusProcess.mpirun(ranks: 2, ["train", config, "--run-dir", parted] + settings
                                                + ["--set", "checkpoint.every_steps=37"]).status, 0)
        for file in Checkpoint.checkpointFiles(in: RunDirectory(parted)) where !file.hasSuffix("000000074.safetensors") {
            try FileManager.default.removeItem(atPath: file)
        }
        let resumed = try PlexusProcess.mpirun(ranks: 2, ["train", config, "--run-dir", parted, "--resume"] + settings)
        XCTAssertEqual(resumed.status, 0, resumed.standardError)
        XCTAssertEqual(try SafeTensors.read(path: parted + "/final.safetensors").tensors.flatMap(\.values), whole.weights)
    }

    /// Lossy compression with deterministic mode is refused at start-up: one line, status 2.
    func testDeterministicWithCompressionIsRefused() throws {
        let result = try PlexusProcess.plexus(["train", config, "--run-dir", directory + "/refused", "--set", "training.deterministic=true",
                                               "--set", "distributed.gradient_compression=bf16"])
        XCTAssertEqual(result.status, 2, result.standardError)
        XCTAssertEqual(result.standardError.split(separator: "\n").count, 1, result.standardError)
        XCTAssertTrue(result.standardError.contains("gradient_compression bf16"), result.standardError)
    }
}
