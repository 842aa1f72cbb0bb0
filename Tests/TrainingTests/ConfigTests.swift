@testable import Config
import DataParallel
@testable import NeuralNet
@testable import Support
import Tables
@testable import Training
import XCTest

final class ConfigTests: XCTestCase {
    let minimal = """
        data:
          train: /data/train
        model:
          layers:
            - {units: 16, activation: relu}
            - {units: 10}
        """

    func testDefaultsAndRoundTrip() throws {
        let config = try TrainingConfig.parse(minimal, source: "c.yaml")
        XCTAssertEqual(config.data.format, .idx)
        XCTAssertEqual(config.data.normalize, .scale)
        XCTAssertEqual(config.model.layers.map(\.units), [16, 10])
        XCTAssertEqual(config.model.layers[1].activation, .identity)
        XCTAssertEqual(config.loss, LossOptions(kind: .crossEntropy))
        XCTAssertEqual(config.optimizer.kind, .adam)
        XCTAssertEqual(config.training.threads, .auto)
        // The resolved YAML parses back to the same config.
        XCTAssertEqual(try TrainingConfig.parse(config.yaml, source: "resolved.yaml"), config)
        let csv = try TrainingConfig.parse("data: {train: a.csv}\nmodel: {layers: [{units: 1}]}\nloss: mse", source: "c.yaml")
        XCTAssertEqual(csv.data.format, .csv)
        XCTAssertEqual(csv.data.normalize, .none)
        XCTAssertEqual(try TrainingConfig.parse(csv.yaml, source: "r"), csv)
    }

    func testSetOverridesParseYAML() throws {
        let config = try TrainingConfig.parse(minimal, source: "c.yaml", overrides: [
            "training.epochs=3", "optimizer.name=adamw",
            "model.layers=[{units: 64, activation: gelu}, {units: 10, activation: identity}]",
            "training.threads=2", "data.test=/data/t10k",
        ])
        XCTAssertEqual(config.training.epochs, 3)
        XCTAssertEqual(config.optimizer.kind, .adamw)
        XCTAssertEqual(config.optimizer.weightDecay, 0.01)
        XCTAssertEqual(config.model.layers, [.init(units: 64, activation: .gelu), .init(units: 10, activation: .identity)])
        XCTAssertEqual(config.training.threads, .fixed(2))
        XCTAssertEqual(config.data.test, .path("/data/t10k"))
    }

    private func assertUserError(_ text: String, overrides: [String] = [], contains fragments: [String],
                                 file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try TrainingConfig.parse(text, source: "c.yaml", overrides: overrides), file: file, line: line) { error in
            guard let error = error as? UserError else { return XCTFail("not a UserError: \(error)", file: file, line: line) }
            XCTAssertFalse(error.message.contains("\n"), "one line: \(error.message)", file: file, line: line)
            for fragment in fragments {
                XCTAssertTrue(error.message.contains(fragment), "\(error.message) lacks \(fragment)", file: file, line: line)
            }
        }
    }

    func testErrorsNameFileLineAndKey() {
        assertUserError(minimal + "\ntraining:\n  epoch: 3\n", contains: ["c.yaml:8", "training.epoch", "unknown key"])
        assertUserError(minimal + "\ntraining:\n  epochs: ten\n", contains: ["c.yaml:8", "training.epochs", "integer"])
        assertUserError(minimal + "\noptimizer: {lr: 0}\n", contains: ["optimizer.lr", "greater than 0"])
        assertUserError(minimal + "\noptimizer: {lr: -1}\n", contains: ["optimizer.lr"])
        assertUserError(minimal.replacingOccurrences(of: "units: 16", with: "units: 0"),
                        contains: ["c.yaml:5", "model.layers[0].units", "at least 1"])
        assertUserError(minimal.replacingOccurrences(of: "relu", with: "relux"),
                        contains: ["model.layers[0].activation", "relux", "leaky_relu"])
        assertUserError("data: {train: x\nmodel: [", contains: ["c.yaml:", "YAML syntax error"])
        assertUserError(minimal + "\nloss: hinge\n", contains: ["loss", "hinge", "cross_entropy"])
        assertUserError(minimal + "\nsurprise: 1\n", contains: ["surprise", "unknown key"])
        assertUserError(minimal + "\ntraining: {threads: 0}\n", contains: ["training.threads"])
        assertUserError(minimal, overrides: ["training.batchsize=3"], contains: ["training.batchsize", "unknown key"])
        assertUserError(minimal, overrides: ["noequals"], contains: ["--set noequals"])
        assertUserError("model: {layers: [{units: 2}]}", contains: ["data.train", "required"])
        assertUserError(minimal + "\noptimizer: {name: adam, momentum: 0.9}\n", contains: ["optimizer.momentum"])
    }

    /// `data.categorical`: a list one-hot encodes, a mapping takes `one_hot` or `{embedding: N}` per column; the
    /// resolved YAML reads back the same; every other form is one line naming the column's key.
    func testCategoricalEmbeddingForms() throws {
        let table = "data: {train: t.csv, targets: [y], categorical: %@}\nmodel: {layers: [{units: 2}]}"
        func rules(_ value: String) throws -> [(name: String, encoding: CategoricalEncoding)] {
            let config = try TrainingConfig.parse(table.replacingOccurrences(of: "%@", with: value), source: "c.yaml")
            XCTAssertEqual(try TrainingConfig.parse(config.yaml, source: "resolved.yaml"), config, value)
            return config.data.rules.categorical
        }
        XCTAssertEqual(try rules("[island, sex]").map(\.encoding), [.oneHot, .oneHot])
        let mapped = try rules("{zip: {embedding: 8}, island: one_hot, \"a b\": {embedding: 1}}")
        XCTAssertEqual(mapped.map(\.name), ["zip", "island", "a b"])
        XCTAssertEqual(mapped.map(\.encoding), [.embedding(dimension: 8), .oneHot, .embedding(dimension: 1)])
        for (value, fragments) in [
            ("{zip: {embedding: 0}}", ["data.categorical.zip.embedding", "at least 1"]),
            ("{zip: {embedding: eight}}", ["data.categorical.zip.embedding", "integer"]),
            ("{zip: {embedding: 2.5}}", ["data.categorical.zip.embedding", "integer"]),
            ("{zip: {embedding: 4, size: 2}}", ["data.categorical.zip.size", "unknown key"]),
            ("{zip: {}}", ["data.categorical.zip", "expected one_hot or {embedding: N}"]),
            ("{zip: embedding}", ["data.categorical.zip", "expected one_hot or {embedding: N}"]),
            ("{zip: [8]}", ["data.categorical.zip", "expected one_hot or {embedding: N}"]),
        ] {
            assertUserError(table.replacingOccurrences(of: "%@", with: value), contains: ["c.yaml:1"] + fragments)
        }
    }

    /// Periodic synchronization and the layer-wise optimizers: off by default, every mistake one line naming its key.
    func testSyncAndLayerwiseOptimizerKeys() throws {
        let defaults = try TrainingConfig.parse(minimal, source: "c.yaml")
        XCTAssertEqual(defaults.distributed.syncEvery, 1)
        XCTAssertNil(defaults.distributed.outerOptimizer)
        let outer = try TrainingConfig.parse(minimal, source: "c.yaml", overrides: [
            "distributed.sync_every=32", "distributed.outer_optimizer={name: nesterov, lr: 0.5}", "optimizer.name=lamb"])
        XCTAssertEqual(outer.distributed.outerOptimizer, OuterOptimizerOptions(learningRate: 0.5, momentum: 0.9))
        XCTAssertEqual(outer.optimizer.epsilon, 1e-6)
        XCTAssertEqual(try TrainingConfig.parse(outer.yaml, source: "resolved.yaml"), outer)
        assertUserError(minimal, overrides: ["distributed.sync_every=0"], contains: ["distributed.sync_every", "at least 1"])
        assertUserError(minimal, overrides: ["distributed.outer_optimizer={name: nesterov}"],
                        contains: ["distributed.outer_optimizer", "sync_every > 1"])
        assertUserError(minimal, overrides: ["distributed.sync_every=8", "distributed.outer_optimizer={momentum: 1.5}"],
                        contains: ["distributed.outer_optimizer.momentum"])
        assertUserError(minimal, overrides: ["distributed.sync_every=8", "training.deterministic=true"],
                        contains: ["distributed.sync_every", "training.deterministic"])
        assertUserError(minimal, overrides: ["distributed.sync_every=8", "distributed.balance=true"],
                        contains: ["distributed.balance", "sync_every"])
        assertUserError(minimal, overrides: ["distributed.sync_every=8", "distributed.gradient_compression=powersgd"],
                        contains: ["distributed.sync_every", "gradient_compression"])
        assertUserError(minimal, overrides: ["optimizer.name=lars", "optimizer.trust_coefficient=0"],
                        contains: ["optimizer.trust_coefficient"])
        assertUserError(minimal, overrides: ["optimizer.name=lamb", "optimizer.momentum=0.9"], contains: ["optimizer.momentum"])
        XCTAssertEqual(try TrainingConfig.parse(minimal, source: "c.yaml", overrides: ["optimizer.name=lars", "optimizer.momentum=0.9"])
            .optimizer.momentum, 0.9)
    }

    func testMissingFile() {
        XCTAssertThrowsError(try TrainingConfig.load(path: "/nonexistent/plexus.yaml")) { error in
            XCTAssertEqual((error as? UserError)?.message, "/nonexistent/plexus.yaml: no such file")
        }
    }
}
