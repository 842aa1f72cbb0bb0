@testable import Datasets
@testable import Formats
import Foundation
@testable import Parquet
@testable import Support
import XCTest

/// The Parquet reader on files pyarrow wrote (Tests/fixtures/parquet, made by make_fixtures.py there): every codec,
/// data page v1 and v2, dictionary and PLAIN encoding, several row groups and pages, nulls, strings and booleans —
/// compared value by value with what pyarrow reads back (mixed.json) — and each kind of broken file ending in one
/// clear UserError.
final class ParquetTests: TemporaryDirectoryTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fixtures").appendingPathComponent("parquet").path

    func fixture(_ name: String) -> String { Self.fixtures + "/" + name }

    static let variants: [String] = ["none", "snappy", "gzip", "zstd"].flatMap { codec in
        ["v1", "v2"].flatMap { version in ["dictionary", "plain"].map { "mixed-\(codec)-\(version)-\($0).parquet" } }
    }

    /// pyarrow's reading of the mixed table: column name → values (NSNull for null).
    lazy var expected: [String: [Any]] = {
        let data = try! Data(contentsOf: URL(fileURLWithPath: fixture("mixed.json")))
        return try! JSONSerialization.jsonObject(with: data) as! [String: [Any]]
    }()

    /// The value pyarrow read, as `ParquetColumnData.number` or `text` gives it.
    func expectedValue(_ column: String, _ row: Int) -> Any? {
        let value = expected[column]![row]
        if value is NSNull { return nil }
        if column == "name" { return value as! String }
        if column == "flag" { return (value as! Bool) ? 1.0 : 0.0 }
        if column == "u64" { return Double((value as! NSNumber).uint64Value) }
        return (value as! NSNumber).doubleValue
    }

    func testEveryCodecPageVersionAndEncodingReadsWhatPyarrowReads() throws {
        let names = ["label", "a", "b", "c", "small", "byte", "u32", "u64", "day", "flag", "name"]
        for variant in Self.variants {
            let file = try ParquetFile(path: fixture(variant))
            XCTAssertEqual(file.rowCount, 41, variant)
            XCTAssertEqual(file.rowGroupStarts, [0, 16, 32, 41], variant)
            XCTAssertEqual(file.columns.map(\.name), names, variant)
            XCTAssertEqual(file.columns.map(\.kind), [.integer, .real, .real, .integer, .integer, .integer, .integer, .integer,
                                                      .integer, .boolean, .text], variant)
            XCTAssertEqual(file.columns.filter { !$0.isOptional }.map(\.name), ["label", "a", "c"], variant)
            XCTAssertTrue(file.createdBy?.hasPrefix("parquet-cpp-arrow") ?? false, variant)
            for (index, name) in names.enumerated() {
                let data = try file.read(column: index, rows: 0..<41)
                for row in 0..<41 {
                    let want = expectedValue(name, row)
                    XCTAssertEqual(data.isNull(row), want == nil, "\(variant) \(name) row \(row)")
                    if let text = want as? String {
                        XCTAssertEqual(data.text(at: row), text, "\(variant) \(name) row \(row)")
                    } else {
                        XCTAssertEqual(data.number(at: row), want as? Double, "\(variant) \(name) row \(row)")
                    }
                }
            }
        }
    }

    /// Any range of rows reads the same values as the whole column, across row groups and pages.
    func testRowRangesMatchTheWholeColumn() throws {
        for variant in ["mixed-snappy-v1-dictionary.parquet", "mixed-zstd-v2-plain.parquet", "mixed-gzip-v2-dictionary.parquet"] {
            let file = try ParquetFile(path: fixture(variant))
            for column in file.columns.indices {
                let whole = try file.read(column: column, rows: 0..<41)
                for range in [0..<1, 3..<9, 15..<17, 16..<32, 30..<41, 40..<41, 20..<20, 0..<41] {
                    let part = try file.read(column: column, rows: range)
                    for (offset, row) in range.enumerated() {
                        XCTAssertEqual(part.isNull(offset), whole.isNull(row), "\(variant) column \(column) rows \(range)")
                        XCTAssertEqual(part.number(at: offset), whole.number(at: row), "\(variant) column \(column) rows \(range)")
                        XCTAssertEqual(part.text(at: offset), whole.text(at: row), "\(variant) column \(column) rows \(range)")
                    }
                }
            }
        }
    }

    func testDatasetTakesTargetsByNameAndEveryOtherColumnAsAFeature() throws {
        let data = try Dataset.loadParquet(paths: [fixture("numeric.parquet")], targets: ["label"], requireTargets: true)
        XCTAssertEqual(data.count, 12)
        XCTAssertEqual(data.featureNames, ["a", "b", "c"])
        XCTAssertEqual(data.targets, (0..<12).map { Float($0 % 2) })
        guard case let .floats(features) = data.features else { return XCTFail("expected float features") }
        var expected: [Float] = []
        for row in 0..<12 { expected += [Float(row) * 0.5, Float(row * row), Float(1 - Double(row) / 8)] }
        XCTAssertEqual(features, expected)
        XCTAssertEqual(data.location(ofRow: 7), fixture("numeric.parquet") + " (row 7)")

        // Two files are one data set, rows in the listed order; errors name the file and its own row.
        let shards = try Dataset.load(.shards([fixture("numeric-part-1.parquet"), fixture("numeric-part-2.parquet")]),
                                      format: .parquet, targets: ["label"])
        // Numeric columns without nulls stay in their files (read by rows), with the table's names and values.
        XCTAssertEqual(shards.count, 12)
        XCTAssertTrue(shards.readsFromFiles)
        XCTAssertEqual(shards.featureNames, data.featureNames)
        XCTAssertEqual(shards.targets, data.targets)
        XCTAssertEqual(try shards.rawFeatureValues(), features)
        XCTAssertEqual(shards.location(ofRow: 8), fixture("numeric-part-2.parquet") + " (row 1)")
        let pattern = try Dataset.load(.path(Self.fixtures + "/numeric-part-*.parquet"), format: .parquet, targets: ["label"])
        XCTAssertEqual(pattern.targets, data.targets)

        // Two targets, one of them a feature otherwise; prediction inputs may lack the target column.
        let two = try Dataset.load(.path(fixture("numeric.parquet")), format: .parquet, targets: ["c", "label"])
        XCTAssertEqual(two.featureNames, ["a", "b"])
        XCTAssertEqual(two.targetCount, 2)
        let input = try Dataset.load(.path(fixture("numeric.parquet")), format: .parquet, targets: ["price"], requireTargets: false)
        XCTAssertEqual(input.featureNames, ["a", "label", "b", "c"])
        XCTAssertEqual(Set(input.targets), [0])
    }

    /// Numeric columns read by rows through decoded slabs (several per row group, in a cache that holds three) give
    /// the column reader's values for every codec, page version and encoding; a slab held is not decoded again.
    /// PLAIN numbers read in bulk (a dictionary page's: one copy) and looked up in place (an uncompressed
    /// dictionary's) equal the same bytes read one value at a time, from an unaligned start.
    func testPlainNumbersInBulkAndInPlaceMatchOneAtATime() throws {
        func check<Element: FixedWidthValue & Equatable>(_ type: Element.Type) throws {
            var generator = SystemRandomNumberGenerator()
            let size = MemoryLayout<Element>.size, count = 37
            let bytes = (0..<(1 + count * size)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            try bytes.withUnsafeBytes { all in
                let raw = UnsafeRawBufferPointer(rebasing: all[1...])
                var one = ByteCursor(raw, what: "one"), bulk = ByteCursor(raw, what: "bulk")
                var single: [Element] = [], many: [Element] = [Element.zero], looked: [Element] = []
                for _ in 0..<count { try single.appendPlain(&one) }
                try many.appendPlain(&bulk, count: count)
                for index in 0..<count { looked.appendPlain(at: index, of: raw) }
                // Bit patterns, so that NaNs compare.
                let bits = { (values: ArraySlice<Element>) in values.map { value in withUnsafeBytes(of: value) { Array($0) } } }
                XCTAssertEqual(bits(many[1...]), bits(single[...]), "\(type) in bulk")
                XCTAssertEqual(bits(looked[...]), bits(single[...]), "\(type) in place")
                XCTAssertEqual(bulk.position, raw.count)
                XCTAssertEqual([Element].plainWidth, size)
            }
            var short = ByteCursor(UnsafeRawBufferPointer(start: nil, count: 0), what: "short")
            var none: [Element] = []
            XCTAssertThrowsError(try none.appendPlain(&short, count: 1))
        }
        try check(Int32.self)
        try check(Int64.self)
        try check(Float.self)
        try check(Double.self)
        XCTAssertNil(ParquetByteArrays.plainWidth)
        XCTAssertNil(BooleanStorage.plainWidth)
    }

    func testRowsReadThroughSlabsMatchTheColumns() throws {
        for variant in Self.variants {
            let file = try ParquetFile(path: fixture(variant))
            let columns = [1, 2, 0] // a (DOUBLE, required), b (nulls), label (INT64, required)
            XCTAssertEqual(columns.map { file.mayHoldNulls(column: $0) }, [false, true, false], variant)
            let whole = try columns.map { try file.read(column: $0, rows: 0..<41) }
            let cache = DecodedSlabs(budget: 3 * 5 * 2 * 4)
            let rows = ParquetRows(file, columns: [1, 0], slabRows: 5, cache: cache)
            var previous: Range<Int>?
            for range in [0..<41, 3..<9, 3..<9, 14..<18, 40..<41, 15..<33, 30..<33] {
                let before = cache.decodedCount
                var values = [Float](repeating: .nan, count: range.count * 2)
                try values.withUnsafeMutableBufferPointer { try rows.readRows(range, into: $0) }
                for (offset, row) in range.enumerated() {
                    XCTAssertEqual(values[offset * 2], whole[0].number(at: row).map { Float($0) }, "\(variant) row \(row)")
                    XCTAssertEqual(values[offset * 2 + 1], whole[2].number(at: row).map { Float($0) }, "\(variant) row \(row)")
                }
                if range == previous || range == 30..<33 { XCTAssertEqual(cache.decodedCount, before, "\(variant): \(range) held") }
                previous = range
            }
            // 10 slabs (groups of 16, 16 and 9 rows in slabs of 5), the first pass; then more, as three are held.
            XCTAssertGreaterThan(cache.decodedCount, 10, variant)
            let nulls = ParquetRows(file, columns: [2], slabRows: 5, cache: cache)
            var value: [Float] = [0]
            let row = try XCTUnwrap((0..<41).first { whole[1].number(at: $0) == nil })
            let message = errorMessage { try value.withUnsafeMutableBufferPointer { try nulls.readRows(row..<(row + 1), into: $0) } }
            XCTAssertTrue(message.hasPrefix(fixture(variant) + " (row \(row)): column \"b\""), message)
        }
    }

    func testBrokenFilesAreOneLineNamingTheFile() throws {
        let cases: [(String, String)] = [
            ("bad-truncated.parquet", "no PAR1 at the end (is the file truncated?)"),
            ("bad-no-magic.parquet", "not a Parquet file (no PAR1 at the start)"),
            ("bad-footer-length.parquet", "a footer of"),
            ("bad-footer.parquet", "footer"),
            ("bad-nested.parquet", "column \"x\" is a group (a nested schema); Plexus reads flat schemas only"),
            ("bad-page-data.parquet", "row group 0, column \"a\": page at byte"),
            ("bad-decimal.parquet", "column \"x\" is FIXED_LEN_BYTE_ARRAY, which Plexus does not read"),
            ("bad-delta.parquet", "values in DELTA_BINARY_PACKED, which Plexus does not read"),
            ("bad-lz4.parquet", "pages compressed with LZ4_RAW are not supported"),
            ("bad-text-feature.parquet", " (row 0): non-numeric value \"a\" in column \"name\""),
            ("bad-null-label.parquet", " (row 1): missing target in column \"label\""),
            ("bad-nan.parquet", " (row 1): missing value in column \"x\""),
        ]
        for (name, expected) in cases {
            let message = errorMessage { try Dataset.loadParquet(paths: [self.fixture(name)], targets: ["label"], requireTargets: true) }
            XCTAssertTrue(message.hasPrefix(fixture(name) + ":") || message.hasPrefix(fixture(name) + " (row"), "\(name): \(message)")
            XCTAssertTrue(message.contains(expected), "\(name): \(message)")
            XCTAssertFalse(message.contains("\n"), name)
        }
        // Every truncation of a good file is a UserError, never a crash.
        let good = try [UInt8](Data(contentsOf: URL(fileURLWithPath: fixture("mixed-snappy-v2-dictionary.parquet"))))
        for length in stride(from: 0, to: good.count, by: 97) {
            let message = errorMessage {
                try Dataset.fromParquet([ParquetFile(FileBytes(copying: Array(good[0..<length])), path: "cut.parquet")],
                                        targets: ["label"], requireTargets: true)
            }
            XCTAssertTrue(message.hasPrefix("cut.parquet"), "\(length) bytes: \(message)")
        }
        XCTAssertEqual(errorMessage { try Dataset.loadParquet(paths: [self.fixture("numeric.parquet")], targets: ["price"],
                                                              requireTargets: true) },
                       fixture("numeric.parquet") + ": no \"price\" column; columns are: \"a\", \"label\", \"b\", \"c\"")
    }

    /// A C library that is not installed is one line naming what needs it and how to install it.
    func testMissingLibraryIsOneLine() {
        XCTAssertEqual(errorMessage {
            try SharedLibrary(sonames: ["libplexus-absent.so.7", "libplexus-absent.so.8"], purpose: "reading ABC files",
                              install: "apt-get install libabc")
        }, "reading ABC files needs libplexus-absent.so.7 or libplexus-absent.so.8, which is not installed (apt-get install libabc)")
    }

    /// Snappy against the format's own examples: literals, overlapping copies, and data that lies.
    func testSnappyDecompressesLiteralsAndCopies() throws {
        // "abcabcabcab": length 11, a 3-byte literal "abc", then a copy of 8 bytes from offset 3 (1-byte offset form).
        let block: [UInt8] = [11, 0x08, 0x61, 0x62, 0x63, 0x01 | (4 << 2), 3]
        var output = [UInt8](repeating: 0, count: 11)
        try block.withUnsafeBytes { input in
            try output.withUnsafeMutableBytes { try Snappy.decompress(input, into: $0, what: "test") }
        }
        XCTAssertEqual(String(decoding: output, as: UTF8.self), "abcabcabcab")
        for bad in [[11, 0x08, 0x61, 0x62, 0x63, 0x01 | (4 << 2), 4], [11, 0x08, 0x61], [12, 0x08, 0x61, 0x62, 0x63, 0x11, 3]] as [[UInt8]] {
            XCTAssertThrowsError(try bad.withUnsafeBytes { input in
                try output.withUnsafeMutableBytes { try Snappy.decompress(input, into: $0, what: "test") }
            }) { XCTAssertTrue(($0 as? UserError)?.message.hasPrefix("test: corrupt Snappy data") ?? false, "\($0)") }
        }
    }
}
