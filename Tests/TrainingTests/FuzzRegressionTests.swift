@testable import Config
@testable import Datasets
@testable import Formats
import Foundation
@testable import Parquet
@testable import Support
@testable import Training
import XCTest

/// Replays every input kept under Tests/fuzz/regressions/TARGET/ (crashes found by Tests/fuzz/run.sh, and
/// inputs it found that reach error paths) through the same reader calls as the fuzz target: each must
/// return or throw a one-line `UserError` — a crash here is a reader bug coming back.
final class FuzzRegressionTests: XCTestCase {
    private static let regressions = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fuzz").appendingPathComponent("regressions")

    /// Feeds each regression input of `target` to `body`, failing on anything but success or a one-line UserError.
    private func replay(_ target: String, _ body: ([UInt8]) throws -> Void) throws {
        let directory = Self.regressions.appendingPathComponent(target)
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { !$0.hasPrefix(".") && !$0.hasSuffix(".md") }.sorted()
        XCTAssertFalse(names.isEmpty, "no regression inputs in \(directory.path)")
        for name in names {
            let bytes = try [UInt8](Data(contentsOf: directory.appendingPathComponent(name)))
            do {
                try body(bytes)
            } catch let error as UserError {
                XCTAssertFalse(error.message.unicodeScalars.contains { [0x0A, 0x0B, 0x0C, 0x0D, 0x85, 0x2028, 0x2029].contains($0.value) },
                               "\(target)/\(name): multi-line UserError \(error.message.debugDescription)")
            } catch {
                XCTFail("\(target)/\(name): threw \(type(of: error)) instead of UserError: \(error)")
            }
        }
    }

    func testIDXRegressions() throws {
        try replay("idx") { bytes in
            let array = try IDX.decode(bytes, path: "images")
            XCTAssertEqual(array.bytes.count, array.dimensions.reduce(1) { $0.multipliedReportingOverflow(by: $1).partialValue })
            let itemCount = min(array.dimensions[0], 1 << 16)
            let labels = IDXArray(dimensions: [itemCount], bytes: [UInt8](repeating: 3, count: itemCount))
            let dataset = try Dataset.fromIDX(images: array, labels: labels, imagesPath: "images", labelsPath: "labels")
            try dataset.validateClassLabels(classCount: 10)
            try dataset.applyNormalization(.standardize)
            dataset.limit(to: 2)
            _ = try? Dataset.fromIDX(images: labels, labels: array, imagesPath: "images", labelsPath: "labels")
        }
    }

    func testCSVRegressions() throws {
        for (targets, requireTargets) in [(["label"], true), (["label"], false), (["label", "b"], true), (["a", "label"], false)] {
            try replay("csv") { bytes in
                let dataset = try Dataset.fromCSV(bytes, path: "fuzz.csv", targets: targets, requireTargets: requireTargets)
                XCTAssertGreaterThan(dataset.count, 0)
                XCTAssertEqual(dataset.targets.count, dataset.count * targets.count)
                if case let .floats(features) = dataset.features { XCTAssertTrue(features.allSatisfy(\.isFinite)) }
                try dataset.applyNormalization(.standardize)
                try dataset.applyTargetNormalization(.standardize)
                if targets.count == 1 { try? dataset.validateClassLabels(classCount: 3) } else { try? dataset.validateBinaryTargets() }
                dataset.limit(to: 3)
            }
        }
    }

    func testNPZRegressions() throws {
        let variants: [([String]?, Bool, (String?, String?))] = [(nil, true, (nil, nil)), (["a", "b"], false, (nil, nil)),
                                                                 (nil, true, ("X", "y"))]
        for (names, requireTargets, arrays) in variants {
            try replay("npz") { bytes in
                let dataset = try Dataset.fromNPZ(FileBytes(copying: bytes), path: "fuzz.npz", targetNames: names,
                                                  requireTargets: requireTargets, arrays: arrays)
                XCTAssertEqual(dataset.targets.count, dataset.count * dataset.targetCount)
                try dataset.applyNormalization(.standardize)
                try dataset.applyTargetNormalization(.standardize)
                dataset.limit(to: 2)
            }
        }
    }

    func testParquetRegressions() throws {
        try replay("parquet") { bytes in
            let file = try ParquetFile(FileBytes(copying: bytes), path: "fuzz.parquet")
            XCTAssertEqual(file.rowGroupStarts.last, file.rowCount)
            for column in file.columns.indices {
                do {
                    let values = try file.read(column: column, rows: 0..<min(file.rowCount, 4096))
                    XCTAssertEqual(values.nulls?.count ?? min(file.rowCount, 4096), min(file.rowCount, 4096))
                } catch let error as UserError {
                    XCTAssertFalse(error.message.contains("\n"), error.message)
                }
            }
            if file.rowCount <= 50_000 {
                let dataset = try Dataset.fromParquet([file], targets: ["label"], requireTargets: false)
                XCTAssertEqual(dataset.targets.count, dataset.count)
                try dataset.applyNormalization(.standardize)
            }
        }
    }

    func testNPYRegressions() throws {
        try replay("npy") { bytes in
            let file = try NumPyFile(FileBytes(copying: bytes), path: "fuzz.npy")
            var values = [Float](repeating: 0, count: file.rowCount * file.rowWidth)
            try values.withUnsafeMutableBufferPointer { try file.readRows(0..<file.rowCount, into: $0) }
            XCTAssertTrue(values.allSatisfy(\.isFinite))
            let dataset = try Dataset.fromArrays(features: file, featuresWhat: "fuzz.npy", targets: file, targetsWhat: "fuzz.npy",
                                                 pair: "fuzz.npy has \(file.rowCount) rows but fuzz.npy", base: "y",
                                                 targetNames: nil, paths: ["fuzz.npy"])
            XCTAssertEqual(dataset.count, file.rowCount)
        }
    }

    func testConfigRegressions() throws {
        try replay("config") { bytes in
            let config = try TrainingConfig.parse(String(decoding: bytes, as: UTF8.self), source: "fuzz.yaml")
            XCTAssertEqual(try TrainingConfig.parse(config.yaml, source: "config.yaml"), config)
        }
    }

    /// The anchor/alias scan that guards Yams: no false alarms on ordinary text, no alias slipping past.
    func testAnchorAndAliasScan() {
        for fine in ["train: data/*.csv", "name: R&D", "name: a & b", "# *note* &here\nx: 1", "x: 2*3", "x: 'a' # fine"] {
            XCTAssertNoThrow(try ConfigTree.rejectAnchorsAndAliases(fine, source: "c.yaml"), fine)
        }
        for bad in ["x: *a", "x: &a 1", "- [*a]", "{a: 1,b:*a}", "x: [1,*a]", "x: 1 # c\r*a: 2", "x: \"q\" # *a",
                    "x: it 's\ny: [*a]", "? *a\n: 1", "x:\t*a", "x: |\n  *a"] {
            XCTAssertThrowsError(try ConfigTree.rejectAnchorsAndAliases(bad, source: "c.yaml"), bad) { error in
                XCTAssertEqual((error as? UserError)?.message.hasPrefix("c.yaml:"), true)
            }
        }
    }

    func testSafeTensorsRegressions() throws {
        try replay("safetensors") { bytes in
            let decoded = try SafeTensors.decode(bytes, path: "fuzz.safetensors")
            let again = try SafeTensors.decode(SafeTensors.encode(decoded.tensors, metadata: decoded.metadata), path: "again")
            XCTAssertEqual(again.metadata, decoded.metadata)
            XCTAssertEqual(again.tensors.map(\.name), decoded.tensors.map(\.name))
            XCTAssertEqual(again.tensors.map { $0.values.map(\.bitPattern) }, decoded.tensors.map { $0.values.map(\.bitPattern) })
        }
    }
}
