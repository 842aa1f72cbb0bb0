@testable import Distributed
@testable import Formats
import Foundation
import NeuralNet
import Support
@testable import Training
import XCTest

/// Training on ranks that are threads of this process (`InProcessWorld`) ends with the weights that mpirun's
/// processes reach, bit for bit: node shared memory, buckets of ring sums, bfloat16 and PowerSGD between nodes
/// (checkpoints included), and deterministic mode on every layout.
final class InProcessTrainingTests: TemporaryDirectoryTestCase {
    var config = ""

    /// A CSV task small enough for seconds in a debug build: 480 training rows of 40 features in 3 classes, in
    /// batches of 50 (a short last batch, uneven over 3 ranks); both hidden layers large enough for PowerSGD.
    override func setUpWithError() throws {
        try super.setUpWithError()
        var generator = SplitMix64(seed: 7)
        func rows(_ count: Int) -> String {
            let header = (0..<40).map { "x\($0)" }.joined(separator: ",") + ",label\n"
            return header + (0..<count).map { row in
                let label = row % 3
                let features = (0..<40).map { column in
                    String(format: "%.4f", generator.nextUnitDouble() * 2 - 1 + (column % 3 == label ? 0.5 : 0))
                }
                return (features + [String(label)]).joined(separator: ",")
            }.joined(separator: "\n") + "\n"
        }
        try rows(480).write(toFile: path("train.csv"), atomically: true, encoding: .utf8)
        try rows(120).write(toFile: path("test.csv"), atomically: true, encoding: .utf8)
        try """
            seed: 5
            data: {train: \(path("train.csv")), test: \(path("test.csv"))}
            model: {layers: [{units: 48, activation: relu}, {units: 36, activation: tanh}, {units: 3}]}
            loss: cross_entropy
            optimizer: {name: adam, lr: 0.003}
            training: {batch_size: 50, threads: 1, epochs: 3, clip_grad_norm: 0.5}
            """.write(toFile: path("task.yaml"), atomically: true, encoding: .utf8)
        config = path("task.yaml")
    }

    /// Final weights and every checkpoint's tensors of the run in `run`.
    func results(_ run: String) throws -> (weights: [Float], checkpoints: [[TensorRecord]]) {
        (try SafeTensors.read(path: run + "/final.safetensors").tensors.flatMap(\.values),
         try Checkpoint.checkpointFiles(in: RunDirectory(run)).map { try SafeTensors.read(path: $0).tensors })
    }

    /// `plexus train` under mpirun on `ranks` processes, with `overrides`; its stdout too.
    func mpirun(_ name: String, ranks: Int, _ overrides: [String]) throws -> (weights: [Float], checkpoints: [[TensorRecord]], output: String) {
        let run = path("mpi-" + name)
        let result = try PlexusProcess.mpirun(ranks: ranks, ["train", config, "--run-dir", run, "--progress", "plain"]
                                              + overrides.flatMap { ["--set", $0] })
        XCTAssertEqual(result.status, 0, "\(name): \(result.standardError)")
        let (weights, checkpoints) = try results(run)
        return (weights, checkpoints, result.standardOutput)
    }

    /// The same command on `ranks` threads of this process, `ranksPerNode` to a node (1 rank: the world of one).
    func threads(_ name: String, ranks: Int, ranksPerNode: Int = 1, _ overrides: [String]) throws -> (weights: [Float], checkpoints: [[TensorRecord]]) {
        let run = path("threads-\(name)-\(ranks)x\(ranksPerNode)"), config = self.config
        // The trainer's stop-signal handlers would outlive the run in this test process: back to the default after it.
        defer { for number in [SIGUSR1, SIGTERM, SIGINT] { signal(number, SIG_DFL) } }
        let train = { (world: Communicator) throws in
            try Commands.train(configPath: config, runDirectory: run, overrides: overrides, progressMode: .plain, communicator: world)
        }
        if ranks == 1 {
            try train(InProcessCommunicator())
        } else {
            for result in InProcessWorld.run(ranks: ranks, ranksPerNode: ranksPerNode, timeoutSeconds: 120, train) { try result.get() }
        }
        return try results(run)
    }

    func testNodeSharedMemoryOnThreadsAsUnderMPI() throws {
        let mpi = try mpirun("shared", ranks: 2, [])
        XCTAssertTrue(mpi.output.contains("gradient reduction: node shared memory (2 ranks per node"), mpi.output)
        XCTAssertEqual(try threads("shared", ranks: 2, ranksPerNode: 2, []).weights, mpi.weights)
    }

    func testRingSumBucketsOnThreadsAsUnderMPI() throws {
        let buckets = ["distributed.shared_memory=false", "distributed.bucket_mb=0"]
        let mpi = try mpirun("buckets", ranks: 3, buckets)
        XCTAssertTrue(mpi.output.contains("3 bucket(s) overlapped with backward"), mpi.output)
        XCTAssertEqual(try threads("buckets", ranks: 3, buckets).weights, mpi.weights)
    }

    func testCompressionOnThreadsAsUnderMPI() throws {
        let separate = ["distributed.shared_memory=false"]
        let bf16 = try mpirun("bf16", ranks: 2, separate + ["distributed.gradient_compression=bf16"])
        XCTAssertTrue(bf16.output.contains("one rank per node, 2 nodes, bfloat16"), bf16.output)
        XCTAssertEqual(try threads("bf16", ranks: 2, separate + ["distributed.gradient_compression=bf16"]).weights, bf16.weights)
        // PowerSGD: the same weights and the same checkpoints, with Q and both ranks' error feedback in them.
        let powerSGD = separate + ["distributed.gradient_compression=powersgd", "distributed.powersgd_rank=2",
                                   "checkpoint.every_steps=7"]
        let mpi = try mpirun("powersgd", ranks: 2, powerSGD)
        XCTAssertTrue(mpi.output.contains("PowerSGD rank 2 (2 matrices compressed)"), mpi.output)
        XCTAssertNotEqual(mpi.weights, bf16.weights)
        let onThreads = try threads("powersgd", ranks: 2, powerSGD)
        XCTAssertEqual(onThreads.weights, mpi.weights)
        XCTAssertFalse(mpi.checkpoints.isEmpty)
        XCTAssertEqual(onThreads.checkpoints, mpi.checkpoints)
        XCTAssertEqual(Set(mpi.checkpoints.last!.map(\.name).filter { $0.hasPrefix("compression.") }),
                       ["compression.powersgd.q", "compression.powersgd.error.0", "compression.powersgd.error.1"])
    }

    func testDeterministicModeIsTheSameOnThreadsAndProcessesOnEveryLayout() throws {
        let deterministic = ["training.deterministic=true"]
        let mpi = try mpirun("deterministic", ranks: 3, deterministic)
        XCTAssertTrue(mpi.output.contains("node shared memory (3 ranks per node, each steps 1/3 of the parameters, fixed point)"),
                      mpi.output)
        for (ranks, perNode) in [(1, 1), (2, 2), (3, 1), (3, 3), (4, 2)] {
            XCTAssertEqual(try threads("deterministic", ranks: ranks, ranksPerNode: perNode, deterministic).weights, mpi.weights,
                           "\(ranks) ranks, \(perNode) per node")
        }
    }
}
