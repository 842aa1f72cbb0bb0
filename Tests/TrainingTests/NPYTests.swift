@testable import Datasets
@testable import Formats
import Foundation
@testable import Support
import XCTest

/// `.npy` files numpy wrote (Tests/fixtures/npy, made by make_fixtures.py there): every dtype, row ranges read
/// without the rest of the file, {x:, y:} pairs as data sets, and each kind of broken file ending in one UserError.
final class NPYTests: TemporaryDirectoryTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fixtures").appendingPathComponent("npy").path

    func fixture(_ name: String) -> String { Self.fixtures + "/" + name }

    /// x[r, c] = 3r + c (+ 0.5 for floats, % 2 for bool), as make_fixtures.py writes it.
    func expectedRow(_ row: Int, _ dtype: String) -> [Float] {
        (0..<3).map { column in
            let value = 3 * row + column
            switch dtype {
            case "float32", "float64": return Float(value) + 0.5
            case "bool": return Float(value % 2)
            default: return Float(value)
            }
        }
    }

    func testRowRangesOfEveryDtype() throws {
        for dtype in ["uint8", "bool", "int32", "int64", "float32", "float64"] {
            let file = try NumPyFile(path: fixture("x-\(dtype).npy"))
            XCTAssertEqual(file.rowCount, 5, dtype)
            XCTAssertEqual(file.rowWidth, 3, dtype)
            for rows in [0..<5, 1..<3, 4..<5, 2..<2] {
                var values = [Float](repeating: -1, count: rows.count * 3)
                try values.withUnsafeMutableBufferPointer { try file.readRows(rows, into: $0) }
                XCTAssertEqual(values, rows.flatMap { expectedRow($0, dtype) }, "\(dtype) rows \(rows)")
            }
            // A byte array is viewed in the mapped file, not copied.
            XCTAssertEqual(file.byteRows(1..<3)?.map { Float($0) }, ["uint8", "bool"].contains(dtype) ? (1..<3).flatMap { expectedRow($0, dtype) } : nil)
        }
        let version2 = try NumPyFile(path: fixture("x-version2.npy"))
        var values = [Float](repeating: 0, count: 15)
        try values.withUnsafeMutableBufferPointer { try version2.readRows(0..<5, into: $0) }
        XCTAssertEqual(values, (0..<5).flatMap { expectedRow($0, "float32") })
    }

    /// With `shuffle: rows` (`expectRandomReads`) the reader ahead of the steps asks for the pages of the rows it has
    /// queued: after `willRead` they come into the page cache without being touched (the file's pages were dropped
    /// from it first), and rows never asked for stay out; reading a row faults in its pages, not those around it
    /// (the kernel's read-around reaches megabytes on some disks). The rows read back unchanged.
    func testWillReadBringsJustTheQueuedRowsIntoMemory() throws {
        let rows = 4096, width = 1024, page = Int(sysconf(Int32(_SC_PAGESIZE)))
        // A version 1.0 header padded to 128 bytes, then rows × width float32 values v[r, c] = r.
        var header = Array("{'descr': '<f4', 'fortran_order': False, 'shape': (\(rows), \(width)), }".utf8)
        header += [UInt8](repeating: 0x20, count: 128 - 10 - header.count - 1) + [0x0a]
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.count), 0] + header
        for row in 0..<rows { bytes += [Float](repeating: Float(row), count: width).withUnsafeBytes { Array($0) } }
        let path = try write(bytes, "x.npy")
        let file = try NumPyFile(path: path), stored = FileRows([file], width: width)
        stored.expectRandomReads()
        // Drop the file's pages from the page cache (clean once synced); the header's stay, mapped by the reader.
        let descriptor = open(path, O_RDONLY)
        defer { close(descriptor) }
        fsync(descriptor)
        _ = posix_fadvise(descriptor, 0, 0, Int32(POSIX_FADV_DONTNEED))
        let view = mmap(nil, bytes.count, PROT_READ, MAP_SHARED, descriptor, 0)!
        defer { munmap(view, bytes.count) }
        func resident(_ row: Int) -> Bool {
            var flag: UInt8 = 0
            _ = mincore(view + (128 + row * width * 4) / page * page, page, &flag)
            return flag & 1 == 1
        }
        // Rows a few megabytes past the header, whose pages the reader keeps mapped (in folios of up to 2 MB).
        let asked = [1200, 2200, 4095], untouched = [1600, 2600, 3400], faulted = 3000
        guard !(asked + untouched + [faulted]).contains(where: resident) else {
            throw XCTSkip("the kernel kept the file's pages in memory: rows \((asked + untouched + [faulted]).filter(resident))")
        }
        for row in asked { stored.willRead(row..<(row + 1)) }
        let deadline = Date().addingTimeInterval(10)
        while !asked.allSatisfy(resident) && Date() < deadline { usleep(10_000) }
        XCTAssertEqual(asked.filter(resident), asked, "pages of the rows asked for")
        XCTAssertEqual(untouched.filter(resident), [], "pages of rows nobody asked for")
        var values = [Float](repeating: -1, count: width)
        try values.withUnsafeMutableBufferPointer { try stored.read(faulted..<(faulted + 1), into: $0.baseAddress!) }
        XCTAssertEqual(Set(values), [Float(faulted)])
        XCTAssertEqual(untouched.filter(resident), [], "pages around a row read at random")
        for row in asked + untouched {
            try values.withUnsafeMutableBufferPointer { try stored.read(row..<(row + 1), into: $0.baseAddress!) }
            XCTAssertEqual(Set(values), [Float(row)], "row \(row)")
        }
    }

    func testPairsAreDataSets() throws {
        let data = try Dataset.load(.pair(features: fixture("x-float32.npy"), targets: fixture("y2.npy")), format: .npy, targets: nil)
        XCTAssertEqual(data.count, 5)
        XCTAssertEqual(data.featureCount, 3)
        XCTAssertEqual(data.targetNames, ["y_0", "y_1"])
        XCTAssertEqual(data.targets, (0..<5).flatMap { [Float($0) / 2, -Float($0)] })
        XCTAssertEqual(data.location(ofRow: 2), fixture("x-float32.npy") + " (row 2)")
        let named = try Dataset.load(.pair(features: fixture("x3d.npy"), targets: fixture("y1.npy")), format: .npy, targets: ["speed"])
        XCTAssertEqual(named.featureCount, 3)
        XCTAssertEqual(named.targetNames, ["speed"])
        guard case let .bytes(storage) = named.features else { return XCTFail("a uint8 x stays bytes") }
        XCTAssertTrue(storage.isFileBacked)
        // Prediction inputs: x alone, as a pair without y or as a path.
        for location in [DataLocation.pair(features: fixture("x-int64.npy"), targets: nil), .path(fixture("x-int64.npy"))] {
            let input = try Dataset.load(location, format: .npy, targets: ["t1", "t2"], requireTargets: false)
            XCTAssertEqual(input.targetCount, 2)
            XCTAssertEqual(input.count, 5)
        }
    }

    func testBrokenFilesAreOneLineNamingTheFile() throws {
        let y = fixture("y1.npy")
        let cases: [(String, String, String)] = [
            ("bad-fortran.npy", y, "Fortran-order arrays are not supported"),
            ("bad-big-endian.npy", y, "big-endian dtype \">f4\" is not supported"),
            ("bad-x-1d.npy", y, "shape (5,), expected [rows, features]"),
            ("bad-scalar.npy", y, "a 0-d array (shape ()), expected rows"),
            ("bad-truncated.npy", y, "needs 60 bytes, the file holds 55"),
            ("bad-nan.npy", y, "value at row 3, column 2 is not finite as a float32"),
            ("x-float32.npy", fixture("bad-y-rows.npy"), "x-float32.npy has 5 rows but " + fixture("bad-y-rows.npy") + " has 4"),
            ("x-float32.npy", fixture("x3d.npy"), "shape (5, 1, 3), expected [rows] or [rows, targets]"),
        ]
        for (features, targets, expected) in cases {
            let message = errorMessage {
                // Values are checked by the pass a run makes over the rows left in their files.
                try Dataset.load(.pair(features: self.fixture(features), targets: targets), format: .npy, targets: nil)
                    .verifyFileRows(part: 0, of: 1)
            }
            XCTAssertTrue(message.hasPrefix(Self.fixtures), "\(features): \(message)")
            XCTAssertTrue(message.contains(expected), "\(features): \(message)")
        }
        XCTAssertEqual(errorMessage { try Dataset.load(.path(self.fixture("x-uint8.npy")), format: .npy, targets: nil) },
                       fixture("x-uint8.npy") + ": .npy data is a pair of files, {x: FEATURES.npy, y: TARGETS.npy}")
        // Every truncation of a good file is a UserError.
        let good = try [UInt8](Data(contentsOf: URL(fileURLWithPath: fixture("x-float64.npy"))))
        for length in 1..<good.count {
            let message = errorMessage { try NumPyFile(FileBytes(copying: Array(good[0..<length])), path: "cut.npy") }
            XCTAssertTrue(message.hasPrefix("cut.npy: "), "\(length) bytes: \(message)")
        }
    }
}
