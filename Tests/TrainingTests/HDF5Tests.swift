@testable import Datasets
import Foundation
@testable import HDF5
@testable import Support
import XCTest

/// HDF5 files h5py wrote (Tests/fixtures/hdf5, made by make_fixtures.py there), read through the system's libhdf5:
/// dtypes, groups, row ranges (hyperslabs), shards, and the datasets and files Plexus refuses. Skipped, with the
/// reason, where libhdf5 is not installed (`launch/test` installs it where it can).
final class HDF5Tests: TemporaryDirectoryTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fixtures").appendingPathComponent("hdf5").path

    func fixture(_ name: String) -> String { Self.fixtures + "/" + name }

    override func setUpWithError() throws {
        try super.setUpWithError()
        if case let .failure(error) = HDF5Library.shared { throw XCTSkip("\(error)") }
    }

    /// base[r, c] = 3r + c, as make_fixtures.py writes it.
    func base(_ rows: Range<Int> = 0..<5, _ transform: (Int) -> Double = { Double($0) }) -> [Float] {
        rows.flatMap { row in (0..<3).map { Float(transform(3 * row + $0)) } }
    }

    func read(_ name: String, _ rows: Range<Int>, file: String = "data.h5") throws -> [Float] {
        let dataset = try HDF5File(path: fixture(file)).dataset(name)
        var values = [Float](repeating: -1, count: rows.count * dataset.rowWidth)
        try values.withUnsafeMutableBufferPointer { try dataset.readRows(rows, into: $0) }
        return values
    }

    func testEveryNumericDtypeAndRowRanges() throws {
        for rows in [0..<5, 1..<4, 4..<5, 3..<3] {
            XCTAssertEqual(try read("x", rows), base(rows) { Double($0) + 0.5 }, "x \(rows)")
            XCTAssertEqual(try read("int8", rows), base(rows) { Double($0 - 7) })
            XCTAssertEqual(try read("uint16", rows), base(rows) { Double($0 * 1000) })
            XCTAssertEqual(try read("int64", rows), base(rows) { Double($0) - 1_099_511_627_776 })
            XCTAssertEqual(try read("uint64", rows), base(rows) { Double($0) + 9_223_372_036_854_775_808 })
            XCTAssertEqual(try read("float16", rows), base(rows) { Double($0) + 0.5 })
            XCTAssertEqual(try read("bool", rows), base(rows) { Double($0 % 2) })
            XCTAssertEqual(try read("cube", rows), base(rows))
            XCTAssertEqual(try read("group/features", rows), base(rows))
        }
        let file = try HDF5File(path: fixture("data.h5"))
        XCTAssertEqual(try file.dataset("cube").shape, [5, 1, 3])
        XCTAssertTrue(file.memberNames.contains("group") && file.memberNames.contains("x"))
        XCTAssertTrue(file.contains("group/labels"))
        XCTAssertFalse(file.contains("group/nothing"))
    }

    func testDataSetsOfNamedDatasetsAndShards() throws {
        let data = try Dataset.load(.path(fixture("data.h5")), format: .hdf5, targets: nil)
        XCTAssertEqual(data.count, 5)
        XCTAssertEqual(data.featureCount, 3)
        XCTAssertEqual(data.targetNames, ["y_0", "y_1"])
        XCTAssertEqual(data.targets, (0..<5).flatMap { [Float($0) / 2, -Float($0)] })
        let named = try Dataset.load(.arrays(files: [fixture("data.h5")], features: "group/features", targets: "group/labels"),
                                     format: .hdf5, targets: nil)
        XCTAssertEqual(named.targetNames, ["labels"])
        XCTAssertEqual(named.targets, [0, 1, 0, 1, 0])
        let shards = try Dataset.load(.shards([fixture("part-1.h5"), fixture("part-2.h5")]), format: .hdf5, targets: nil)
        guard case let .floats(features) = shards.features else { return XCTFail("float features") }
        XCTAssertEqual(features, base { Double($0) + 0.5 })
        XCTAssertEqual(shards.targets, data.targets)
        XCTAssertEqual(shards.location(ofRow: 4), fixture("part-2.h5") + " (row 1)")
        // A prediction input without the targets dataset.
        let input = try Dataset.load(.arrays(files: [fixture("data.h5")], features: "x", targets: "absent"), format: .hdf5,
                                     targets: ["t"], requireTargets: false)
        XCTAssertEqual(input.targets, [0, 0, 0, 0, 0])
    }

    func testRefusedDatasetsAndFilesAreOneLine() throws {
        let data = fixture("data.h5")
        let cases: [(String, String, String, String)] = [
            ("data.h5", "absent", "y", "\(data): no dataset \"absent\" (the file holds: \"big\", \"bool\","),
            ("data.h5", "group", "y", "\(data): \"group\" is a group, not a dataset"),
            ("data.h5", "strings", "y", "\(data): \"strings\" holds strings, expected numbers"),
            ("data.h5", "records", "y", "\(data): \"records\" holds compound records, expected numbers"),
            ("data.h5", "scalar", "y", "\(data): \"scalar\": a scalar, expected [rows] or [rows, values, ...]"),
            ("data.h5", "nan", "y", "\(data): \"nan\": value at row 3, column 2 is not finite as a float32"),
            ("data.h5", "big", "y", "\(data): \"big\": value at row 1, column 0 is not finite as a float32"),
            ("data.h5", "x", "y4", "\(data): \"x\" has 5 rows but \"y4\" has 4 (shapes (5, 3) and (4,))"),
            ("data.h5", "y1", "y", "\(data): \"y1\": shape (5,), expected [rows, features]"),
            ("data.h5", "sparse", "y", "\(data): \"sparse\": 1099511627776 rows of 4 values as float32 need more than this machine's"),
            ("lzf.h5", "x", "y", "\(fixture("lzf.h5")): \"x\": cannot read rows 0..<1000 (required filter 'lzf' is not registered)"),
            ("not-hdf5.h5", "x", "y", "\(fixture("not-hdf5.h5")): not an HDF5 file, or a damaged one (file signature not found)"),
            ("truncated.h5", "x", "y", "\(fixture("truncated.h5")): not an HDF5 file, or a damaged one (truncated file: eof = "),
            ("absent.h5", "x", "y", "\(fixture("absent.h5")): no such file"),
        ]
        for (file, features, targets, expected) in cases {
            let message = errorMessage {
                try Dataset.load(.arrays(files: [self.fixture(file)], features: features, targets: targets), format: .hdf5, targets: nil)
            }
            XCTAssertTrue(message.hasPrefix(expected), "\(file) \(features): \(message)")
            XCTAssertFalse(message.contains("\n"), message)
        }
    }
}
