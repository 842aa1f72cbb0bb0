@testable import Distributed
@testable import Formats
import Foundation
import NeuralNet
import Support
@testable import Training
import XCTest

/// A categorical column learned as an embedding: the class is the category's, so only the table can learn it. In
/// deterministic mode one rank, two ranks that are threads, two mpirun processes and a run resumed from a checkpoint
/// end with the same weights (and with float sums, buckets between nodes and a node's shared memory agree); the
/// model file holds the table as `embedding.c.weight`, and `predict` gives what the saved tensors give when the
/// lookup and the layers are done by hand (an unseen level as the table's last row, "other").
final class EmbeddingTrainingTests: TemporaryDirectoryTestCase {
    func table(_ rows: Int, _ generator: inout SplitMix64) -> String {
        "x,c,label\n" + (0..<rows).map { _ in
            let level = generator.nextIndex(below: 6)
            return String(format: "%.4f,k%d,%d", generator.nextUnitDouble() * 2 - 1, level, level % 3)
        }.joined(separator: "\n") + "\n"
    }

    func file(_ text: String, _ name: String) throws -> String {
        try text.write(toFile: path(name), atomically: true, encoding: .utf8)
        return path(name)
    }

    func testEmbeddingLearnsTheSameOnEveryLayoutAndPredictsAsItsTensors() throws {
        try PlexusProcess.requireBinary()
        var generator = SplitMix64(seed: 2)
        let train = try file(table(300, &generator), "train.csv"), test = try file(table(90, &generator), "test.csv")
        let config = try file("""
            seed: 3
            data: {train: \(train), test: \(test), categorical: {c: {embedding: 4}}}
            model: {layers: [{units: 8, activation: tanh}, {units: 3}]}
            optimizer: {name: adam, lr: 0.03}
            training: {epochs: 4, batch_size: 20, threads: 1, deterministic: true}
            """, "task.yaml")
        func summary(_ run: String) throws -> [String: Any] {
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run + "/summary.json"))) as! [String: Any]
        }
        let one = try PlexusProcess.plexus(["train", config, "--run-dir", path("one"), "--progress", "plain"])
        XCTAssertEqual(one.status, 0, one.standardError)
        let reference = try summary(path("one"))
        XCTAssertGreaterThan(reference["test_accuracy"] as! Double, 0.9)
        let mpi = try PlexusProcess.mpirun(ranks: 2, ["train", config, "--run-dir", path("mpi"), "--progress", "plain"])
        XCTAssertEqual(mpi.status, 0, mpi.standardError)
        XCTAssertEqual(try summary(path("mpi"))["param_sha256"] as? String, reference["param_sha256"] as? String)
        // 2 of the 4 epochs, then resumed from the newest checkpoint: the tables come back from it bit for bit.
        let first = try PlexusProcess.plexus(["train", config, "--run-dir", path("resumed"), "--progress", "plain",
                                              "--set", "training.epochs=2", "--set", "checkpoint.every_steps=25"])
        XCTAssertEqual(first.status, 0, first.standardError)
        let resumed = try PlexusProcess.plexus(["train", config, "--run-dir", path("resumed"), "--progress", "plain", "--resume"])
        XCTAssertEqual(resumed.status, 0, resumed.standardError)
        XCTAssertEqual(try summary(path("resumed"))["param_sha256"] as? String, reference["param_sha256"] as? String)
        defer { for number in [SIGUSR1, SIGTERM, SIGINT] { signal(number, SIG_DFL) } }
        func threads(_ run: String, ranksPerNode: Int, _ overrides: [String]) throws -> String? {
            for result in InProcessWorld.run(ranks: 2, ranksPerNode: ranksPerNode, timeoutSeconds: 120, { world in
                try Commands.train(configPath: config, runDirectory: self.path(run), overrides: overrides, progressMode: .plain,
                                   communicator: world)
            }) { try result.get() }
            return try summary(path(run))["param_sha256"] as? String
        }
        XCTAssertEqual(try threads("threads", ranksPerNode: 1, []), reference["param_sha256"] as? String)
        // Float sums of 2 ranks are the same bits however they travel: the tables go in the first layer's bucket
        // between nodes and into each rank's segment of a node's shared memory.
        let float = ["training.deterministic=false"], buckets = float + ["distributed.shared_memory=false", "distributed.bucket_mb=0"]
        let bucketed = try PlexusProcess.mpirun(ranks: 2, ["train", config, "--run-dir", path("buckets"), "--progress", "plain"]
                                                + buckets.flatMap { ["--set", $0] })
        XCTAssertTrue(bucketed.standardOutput.contains("2 bucket(s) overlapped with backward"), bucketed.standardOutput)
        XCTAssertEqual(try threads("shared", ranksPerNode: 2, float), try summary(path("buckets"))["param_sha256"] as? String)

        // The saved tensors, and the network by hand: h = tanh(W₀·[x, table[code]] + b₀), output = W₁·h + b₁.
        var tensors: [String: TensorRecord] = [:]
        for tensor in try SafeTensors.read(path: path("one/final.safetensors")).tensors { tensors[tensor.name] = tensor }
        XCTAssertEqual(tensors.keys.sorted(), ["embedding.c.weight", "layers.0.bias", "layers.0.weight", "layers.1.bias",
                                               "layers.1.weight"])
        XCTAssertEqual(tensors["embedding.c.weight"]?.shape, [7, 4])  // k0...k5 and "other"
        let rows: [(x: Double, code: Int)] = [(0.25, 0), (-0.5, 4), (0.75, 6)]
        let input = try file("x,c\n0.25,k0\n-0.5,k4\n0.75,k9\n", "input.csv")
        let predicted = try PlexusProcess.plexus(["predict", path("one"), "--input", input, "--output", path("p.csv")])
        XCTAssertEqual(predicted.status, 0, predicted.standardError)
        let lines = try String(contentsOfFile: path("p.csv"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.first, "output_0,output_1,output_2,predicted_class")
        // y[out] = W[out×in]·x + b, in Double.
        func dense(_ name: String, _ x: [Double]) -> [Double] {
            let weight = tensors["layers.\(name).weight"]!.values, bias = tensors["layers.\(name).bias"]!.values
            var y: [Double] = []
            for unit in bias.indices {
                var sum = Double(bias[unit])
                for column in x.indices { sum += Double(weight[unit * x.count + column]) * x[column] }
                y.append(sum)
            }
            return y
        }
        for (row, line) in zip(rows, lines.dropFirst()) {
            let table = tensors["embedding.c.weight"]!.values
            let features: [Double] = [row.x] + (0..<4).map { Double(table[row.code * 4 + $0]) }
            let outputs = dense("1", dense("0", features).map { tanh($0) })
            let fields = line.split(separator: ",").prefix(3).map { Double($0)! }
            for (field, output) in zip(fields, outputs) { XCTAssertEqual(field, output, accuracy: 1e-4 * max(1, abs(output)), "\(line)") }
        }
        // evaluate on the saved model reports the test metrics training reported.
        let evaluated = try PlexusProcess.plexus(["evaluate", path("one")])
        XCTAssertEqual(evaluated.status, 0, evaluated.standardError)
        let report = try JSONSerialization.jsonObject(with: Data(evaluated.standardOutput.utf8)) as! [String: Any]
        XCTAssertEqual(report["loss"] as! Double, reference["test_loss"] as! Double, accuracy: 1e-6)
        XCTAssertEqual(report["accuracy"] as? Double, reference["test_accuracy"] as? Double)
    }
}
