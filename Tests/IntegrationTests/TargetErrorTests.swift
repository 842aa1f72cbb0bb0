import Foundation
import XCTest
@testable import Training

/// Mistakes in targets and NumPy input: exit status 2 and one stderr line naming the file (and line) or config key.
extension CommandLineErrorTests {
    /// A config training on `train` with `targets`, `loss` and `layers`.
    func targetConfig(train: String, targets: String, loss: String = "mse", layers: String = "[{units: 4, activation: relu}, {units: 2}]") -> String {
        write("config.yaml", """
            data: {train: \(train), targets: \(targets)}
            model: {layers: \(layers)}
            loss: \(loss)
            training: {epochs: 1, batch_size: 2, threads: 1}
            """)
    }

    func testTargetMistakes() throws {
        let data = write("multi.csv", "a,y1,b,y2\n1,2,3,4\n5,6,7,8\n")
        try assertUserError(["train", targetConfig(train: data, targets: "[y1, y3]"), "--run-dir", directory + "/t1"],
                            mentions: ["multi.csv:1", "no \"y3\" column in the header", "\"a\", \"y1\", \"b\", \"y2\""])
        try assertUserError(["train", targetConfig(train: data, targets: "[y1, y1]")],
                            mentions: ["config.yaml:1", "data.targets", "\"y1\" is listed twice"])
        try assertUserError(["train", targetConfig(train: data, targets: "[y1, y2]", layers: "[{units: 3}]"), "--run-dir", directory + "/t2"],
                            mentions: ["model.layers", "mse needs one output per target", "3 units but the data has 2 targets"])
        try assertUserError(["train", targetConfig(train: data, targets: "[y1, y2]", loss: "cross_entropy"), "--run-dir", directory + "/t3"],
                            mentions: ["data.targets", "cross_entropy learns one class column"])
        let twice = write("twice.csv", "a,y1,y1\n1,2,3\n")
        try assertUserError(["train", targetConfig(train: twice, targets: "[y1]", layers: "[{units: 1}]"), "--run-dir", directory + "/t4"],
                            mentions: ["twice.csv:1", "column \"y1\" appears more than once in the header"])
        let nonNumeric = write("nonnumeric.csv", "a,y1,b,y2\n1,2,3,4\n5,six,7,8\n")
        try assertUserError(["train", targetConfig(train: nonNumeric, targets: "[y1, y2]"), "--run-dir", directory + "/t5"],
                            mentions: ["nonnumeric.csv:3", "non-numeric value \"six\" in column \"y1\""])
        let notBinary = write("labels.csv", "a,p,q\n1,0,1\n2,1,2\n")
        try assertUserError(["train", targetConfig(train: notBinary, targets: "[p, q]", loss: "binary_cross_entropy"),
                             "--run-dir", directory + "/t6"], mentions: ["labels.csv:3", "target \"q\" is 2.0", "0 or 1"])
        try assertUserError(["train", targetConfig(train: data, targets: "[y1, y2]", loss: "{name: l1, delta: 2}")],
                            mentions: ["loss.delta", "only huber"])
    }

    func testNumPyMistakes() throws {
        let fixtures = PlexusProcess.root + "/Tests/fixtures/npz/"
        func npzConfig(_ name: String) -> String {
            write("npz.yaml", "data: {train: \(fixtures + name)}\nmodel: {layers: [{units: 2}]}\nloss: mse\ntraining: {threads: 1}\n")
        }
        for (name, fragment) in [("bad-no-y.npz", "no targets array y"), ("bad-no-x.npz", "no features array x or X"),
                                 ("bad-rows-disagree.npz", "x has 5 rows but y has 4"), ("bad-fortran.npz", "Fortran-order"),
                                 ("bad-float16.npz", "unsupported dtype"), ("bad-truncated.npz", "corrupt zip"),
                                 ("bad-crc.npz", "CRC-32 mismatch"), ("bad-deflate.npz", "is corrupt")] {
            try assertUserError(["train", npzConfig(name), "--run-dir", directory + "/" + name], mentions: [fixtures + name, fragment])
        }
        try assertUserError(["train", npzConfig("x-float32-stored.npz"), "--set", "model.layers=[{units: 3}]"],
                            mentions: ["model.layers", "3 units but the data has 2 targets"])
        // evaluate and predict read npz too, with the same errors.
        let run = directory + "/good"
        let trained = try PlexusProcess.plexus(["train", npzConfig("x-float32-stored.npz"), "--run-dir", run, "--set", "training.epochs=1"])
        XCTAssertEqual(trained.status, 0, trained.standardError)
        try assertUserError(["evaluate", run, "--data", fixtures + "bad-crc.npz"], mentions: [fixtures + "bad-crc.npz", "CRC-32"])
        try assertUserError(["evaluate", run, "--data", fixtures + "capital-x-y1d.npz"],
                            mentions: ["y.npy: 1 target column, expected 2 (\"y_0\", \"y_1\")"])
        try assertUserError(["predict", run, "--input", fixtures + "bad-no-x.npz"], mentions: [fixtures + "bad-no-x.npz", "no features array"])
    }
}
