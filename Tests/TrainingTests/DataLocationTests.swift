@testable import Config
@testable import Datasets
import Foundation
@testable import Support
import XCTest

/// `data.train`, `data.test` and `data.validation` in every form — a path or pattern, a list of shards, an `.npy`
/// pair, named arrays — with the format each implies, the resolved config.yaml that reads back the same, and the
/// same text on the command line.
final class DataLocationTests: XCTestCase {
    func config(_ data: String) throws -> TrainingConfig {
        try TrainingConfig.parse("data: \(data)\nmodel: {layers: [{units: 2}]}\n", source: "c.yaml")
    }

    func testEveryFormAndTheFormatItImplies() throws {
        let cases: [(String, DataLocation, DataFormat, [String]?)] = [
            ("{train: a.parquet}", .path("a.parquet"), .parquet, ["label"]),
            ("{train: data/part-*.PQ}", .path("data/part-*.PQ"), .parquet, ["label"]),
            ("{train: [a.npz, b.npz]}", .shards(["a.npz", "b.npz"]), .npz, nil),
            ("{train: {x: x.npy, y: y.npy}}", .pair(features: "x.npy", targets: "y.npy"), .npy, nil),
            ("{train: {file: t.h5, x: features, y: labels}}", .arrays(files: ["t.h5"], features: "features", targets: "labels"), .hdf5, nil),
            ("{train: {file: [a.hdf5, b.hdf5]}}", .arrays(files: ["a.hdf5", "b.hdf5"], features: "x", targets: "y"), .hdf5, nil),
            ("{train: t.h5, targets: [speed]}", .path("t.h5"), .hdf5, ["speed"]),
            ("{train: t.csv}", .path("t.csv"), .csv, ["label"]),
            ("{train: mnist/train}", .path("mnist/train"), .idx, nil),
        ]
        for (text, location, format, targets) in cases {
            let parsed = try config(text)
            XCTAssertEqual(parsed.data.train, location, text)
            XCTAssertEqual(parsed.data.format, format, text)
            XCTAssertEqual(parsed.data.targets, targets, text)
            // config.yaml (and a model file's config) reads back as the same config.
            XCTAssertEqual(try TrainingConfig.parse(parsed.yaml, source: "config.yaml"), parsed, parsed.yaml)
        }
        let split = try config("{train: {x: a.npy, y: b.npy}, test: {x: c.npy, y: d.npy}, validation: [v1.npz, v2.npz]}")
        XCTAssertEqual(split.data.test, .pair(features: "c.npy", targets: "d.npy"))
        XCTAssertEqual(split.data.validation, .shards(["v1.npz", "v2.npz"]))
        XCTAssertTrue(split.yaml.contains("  train: {x: \"a.npy\", y: \"b.npy\"}\n"), split.yaml)
        XCTAssertTrue(split.yaml.contains("  validation: [\"v1.npz\", \"v2.npz\"]\n"), split.yaml)
    }

    func testMistakesNameTheKey() {
        let cases: [(String, String)] = [
            ("{train: {x: a.npy, z: b.npy}}", "c.yaml:1: data.train: unknown key \"z\""),
            ("{train: {y: b.npy}}", "c.yaml:1: data.train: expected {x: X.npy, y: Y.npy}"),
            ("{train: []}", "c.yaml:1: data.train: an empty list of files"),
            ("{train: [[a.npz]]}", "c.yaml:1: data.train: expected a file name, got a list or mapping"),
            ("{train: a.npz, test: {file: []}}", "c.yaml:1: data.test: an empty list of files"),
        ]
        for (text, prefix) in cases {
            XCTAssertThrowsError(try config(text), text) { error in
                let message = (error as? UserError)?.message ?? "\(error)"
                XCTAssertTrue(message.hasPrefix(prefix), "\(text): \(message)")
            }
        }
    }

    func testTheCommandLineTakesTheSameText() throws {
        XCTAssertEqual(try DataLocation(commandLine: "test.parquet", option: "--data"), .path("test.parquet"))
        XCTAssertEqual(try DataLocation(commandLine: "{x: t_x.npy, y: t_y.npy}", option: "--data"),
                       .pair(features: "t_x.npy", targets: "t_y.npy"))
        XCTAssertEqual(try DataLocation(commandLine: "[a.h5, b.h5]", option: "--input"), .shards(["a.h5", "b.h5"]))
        XCTAssertThrowsError(try DataLocation(commandLine: "{x: a.npy, w: 1}", option: "--input")) { error in
            XCTAssertTrue((error as? UserError)?.message.hasPrefix("--input: unknown key \"w\"") ?? false, "\(error)")
        }
        XCTAssertEqual(DataFormat(impliedBy: try DataLocation(commandLine: "{x: t_x.npy}", option: "--input")), .npy)
    }
}
