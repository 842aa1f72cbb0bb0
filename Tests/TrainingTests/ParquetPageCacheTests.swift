@testable import Formats
@testable import Parquet
import XCTest

/// The cache of decompressed Parquet pages: a page read for many ranges of rows is decompressed once, the cache
/// stays within its budget, a sweep over more pages than fit keeps finding the pages it holds, pages unused for long
/// make room for new ones, and a closed file's pages go.
final class ParquetPageCacheTests: XCTestCase {
    /// A page of `size` bytes, each `fill`, counting the decompressions.
    func page(_ cache: PageCache, file: Int = 1, _ offset: Int, size: Int = 100, made: inout Int) throws -> [UInt8] {
        try cache.page(PageCache.Key(file: file, offset: offset)) {
            made += 1
            return [UInt8](repeating: UInt8(offset % 251), count: size)
        }
    }

    func testPagesAreKeptWithinTheBudgetAndFoundAgain() throws {
        let cache = PageCache(budget: 1_000)
        var made = 0
        for offset in 0..<5 { XCTAssertEqual(try page(cache, offset, made: &made), [UInt8](repeating: UInt8(offset), count: 100)) }
        for offset in 0..<5 { XCTAssertEqual(try page(cache, offset, made: &made), [UInt8](repeating: UInt8(offset), count: 100)) }
        XCTAssertEqual(made, 5, "held pages are not decompressed again")
        XCTAssertEqual(cache.heldBytes, 500)
        // A page larger than the budget is made for its read and not kept.
        _ = try page(cache, 99, size: 1_001, made: &made)
        _ = try page(cache, 99, size: 1_001, made: &made)
        XCTAssertEqual(made, 7)
        XCTAssertEqual(cache.heldBytes, 500)
    }

    func testASweepOverMorePagesThanFitKeepsFindingSomeAndNewPagesComeToBeHeld() throws {
        let cache = PageCache(budget: 1_000)
        var made = 0
        // 15 pages of 100 bytes read in turn, as the slabs of a wide table read a page of each column: dropping the
        // least recently used would drop each page just before it is read again and find none.
        for _ in 0..<10 {
            for offset in 0..<15 { _ = try page(cache, offset, made: &made) }
            XCTAssertLessThanOrEqual(cache.heldBytes, 1_000)
        }
        XCTAssertLessThan(made, 15 + 9 * 15 * 3 / 4, "a quarter of the later reads find their page")
        XCTAssertGreaterThanOrEqual(made, 15 + 9 * 5, "at most the 10 pages that fit are found")
        // Then other pages, read over and over, come to be held.
        made = 0
        for _ in 0..<20 { for offset in 100..<108 { _ = try page(cache, offset, made: &made) } }
        XCTAssertLessThanOrEqual(cache.heldBytes, 1_000)
        for offset in 100..<108 {
            let before = made
            _ = try page(cache, offset, made: &made)
            XCTAssertEqual(made, before, "page \(offset) held")
        }
    }

    func testAClosedFilesPagesGo() throws {
        let cache = PageCache(budget: 1_000)
        var made = 0
        let (first, second) = (cache.identity(), cache.identity())
        XCTAssertNotEqual(first, second)
        _ = try page(cache, file: first, 0, made: &made)
        _ = try page(cache, file: second, 0, made: &made)
        XCTAssertEqual(made, 2, "the same offset in another file is another page")
        cache.drop(file: first)
        XCTAssertEqual(cache.heldBytes, 100)
        _ = try page(cache, file: second, 0, made: &made)
        XCTAssertEqual(made, 2)
    }

    /// pyarrow's compressed files read a few rows at a time (as slabs read them) give the whole column's values and
    /// decompress each page once: as many decompressions as one read of every column, none on a second pass.
    func testCompressedPagesAreDecompressedOnceForManyReads() throws {
        for variant in ParquetTests.variants where !variant.contains("-none-") {
            let path = ParquetTests.fixtures + "/" + variant
            let once = PageCache(budget: 1 << 20), whole = try ParquetFile(FileBytes(mapping: path), path: path, pages: once)
            let columns = try whole.columns.indices.map { try whole.read(column: $0, rows: 0..<whole.rowCount) }
            XCTAssertGreaterThan(once.decompressions, whole.columns.count, "\(variant): several pages a column")
            let cache = PageCache(budget: 1 << 20), file = try ParquetFile(FileBytes(mapping: path), path: path, pages: cache)
            for pass in 0..<2 {
                for index in file.columns.indices {
                    for start in stride(from: 0, to: file.rowCount, by: 3) {
                        let rows = start..<min(start + 3, file.rowCount), part = try file.read(column: index, rows: rows)
                        for (offset, row) in rows.enumerated() {
                            XCTAssertEqual(part.number(at: offset), columns[index].number(at: row), "\(variant) column \(index) row \(row)")
                            XCTAssertEqual(part.text(at: offset), columns[index].text(at: row), "\(variant) column \(index) row \(row)")
                        }
                    }
                }
                XCTAssertEqual(cache.decompressions, once.decompressions, "\(variant), pass \(pass)")
            }
        }
    }
}

/// Skipping into the RLE / bit-packing hybrid from the nearest run start (found once per page) lands on the values a
/// skip through every run header lands on, at every target, and meets a corrupt run exactly where that skip does.
final class HybridRunStartTests: XCTestCase {
    /// Runs of 3-bit values: repeated runs (header count << 1, the value in one byte) and bit-packed groups of 8
    /// (header groups << 1 | 1, the values least significant bit first), with the values they hold.
    func encode(_ runs: [(repeated: UInt32?, values: [UInt32])]) -> (bytes: [UInt8], values: [UInt32]) {
        var bytes: [UInt8] = [], values: [UInt32] = []
        func varint(_ value: Int) {
            var rest = value
            repeat {
                bytes.append(UInt8(rest & 0x7F) | (rest >= 0x80 ? 0x80 : 0))
                rest >>= 7
            } while rest > 0
        }
        for run in runs {
            if let repeated = run.repeated {
                varint(run.values.count << 1)
                bytes.append(UInt8(repeated))
            } else {
                precondition(run.values.count % 8 == 0)
                varint((run.values.count / 8) << 1 | 1)
                var packed = [UInt8](repeating: 0, count: run.values.count * 3 / 8), bit = 0
                for value in run.values {
                    for b in 0..<3 where value >> UInt32(b) & 1 == 1 { packed[(bit + b) / 8] |= 1 << UInt8((bit + b) % 8) }
                    bit += 3
                }
                bytes += packed
            }
            values += run.values
        }
        return (bytes, values)
    }

    func testSkippingFromTheNearestRunStartMatchesSkippingThroughEveryRun() throws {
        var generator = SystemRandomNumberGenerator()
        var runs: [(repeated: UInt32?, values: [UInt32])] = []
        for index in 0..<40 {
            if index % 3 == 0 {
                let value = UInt32.random(in: 0...7, using: &generator)
                runs.append((value, Array(repeating: value, count: Int.random(in: 0...300, using: &generator))))
            } else {
                runs.append((nil, (0..<(8 * Int.random(in: 1...20, using: &generator))).map { _ in UInt32.random(in: 0...7, using: &generator) }))
            }
        }
        let (bytes, values) = encode(runs)
        try bytes.withUnsafeBytes { raw in
            let starts = try HybridDecoder(raw, bitWidth: 3, what: "test").runStarts()
            XCTAssertEqual(starts.values.count, (runs.count + 7) / 8, "every eighth run")
            for target in stride(from: 0, to: values.count, by: 7) {
                var fromStart = try HybridDecoder(raw, bitWidth: 3, what: "test")
                try fromStart.skip(target, from: starts)
                var through = try HybridDecoder(raw, bitWidth: 3, what: "test")
                try through.skip(target)
                for offset in 0..<min(20, values.count - target) {
                    let expected = values[target + offset]
                    XCTAssertEqual(try fromStart.next(), expected, "value \(target + offset) after skipping \(target)")
                    XCTAssertEqual(try through.next(), expected)
                }
            }
            // Cut inside the last run: the starts stop there, and both skips fail only past the data.
            let cut = UnsafeRawBufferPointer(rebasing: raw[..<(raw.count - 2)])
            let cutStarts = try HybridDecoder(cut, bitWidth: 3, what: "test").runStarts()
            XCTAssertEqual(cutStarts.values.count, starts.values.count)
            let before = values.count - runs.last!.values.count - 1
            var early = try HybridDecoder(cut, bitWidth: 3, what: "test")
            try early.skip(before, from: cutStarts)
            XCTAssertEqual(try early.next(), values[before])
            var late = try HybridDecoder(cut, bitWidth: 3, what: "test"), plain = try HybridDecoder(cut, bitWidth: 3, what: "test")
            XCTAssertThrowsError(try { try late.skip(values.count, from: cutStarts); _ = try late.next() }())
            XCTAssertThrowsError(try { try plain.skip(values.count); _ = try plain.next() }())
        }
    }
}
