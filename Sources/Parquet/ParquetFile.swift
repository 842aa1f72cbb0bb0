/// Parquet: a reader of Apache Parquet files (flat schemas), our own decoder of the footer, pages and encodings.

import Formats
import Support

/// A Parquet file, mapped read-only: the schema and row groups from its footer when opened, then any column's values
/// for any range of rows, decoding only the pages that hold those rows.
///
/// Flat schemas only (one level of columns, no lists, maps or structs); columns BOOLEAN, INT32, INT64, FLOAT, DOUBLE
/// and BYTE_ARRAY, required or optional (nulls kept); PLAIN and dictionary encodings, RLE booleans; data pages v1
/// and v2; pages uncompressed or compressed with Snappy, gzip or Zstandard (libzstd, loaded when first needed).
public final class ParquetFile {
    /// The file's path, for messages.
    public let path: String
    /// The columns in schema order.
    public let columns: [ParquetColumn]
    /// Rows in the file.
    public let rowCount: Int
    /// The first row of each row group, then `rowCount`: row group g holds rows `rowGroupStarts[g]..<rowGroupStarts[g + 1]`.
    public let rowGroupStarts: [Int]
    /// What wrote the file (`created_by`), when it says.
    let createdBy: String?
    let file: FileBytes
    let rowGroups: [RowGroupMetadata]
    /// Where its pages decompressed lately are kept for the next reads of their rows, and its name there.
    let pages: PageCache
    let cacheIdentity: Int

    /// Maps `path` and reads its footer; a missing file, another format, a truncated or corrupt footer or a nested
    /// schema is a `UserError` naming the path and what is wrong.
    public convenience init(path: String) throws {
        try self.init(FileBytes(mapping: path), path: path)
    }

    /// Reads the footer of a Parquet file's bytes; `path` names it in errors.
    init(_ file: FileBytes, path: String, pages: PageCache = .shared) throws {
        self.path = path
        self.file = file
        self.pages = pages
        cacheIdentity = pages.identity()
        let bytes = file.buffer
        let magic = Array("PAR1".utf8)
        guard bytes.count >= 12, bytes[0..<4].elementsEqual(magic) else {
            throw UserError("\(path): not a Parquet file (" + (bytes.count < 12 ? "\(bytes.count) bytes" : "no PAR1 at the start") + ")")
        }
        let tail = bytes[(bytes.count - 4)...]
        guard tail.elementsEqual(magic) else {
            throw UserError("\(path): " + (tail.elementsEqual(Array("PARE".utf8))
                ? "an encrypted Parquet file (not supported)" : "no PAR1 at the end (is the file truncated?)"))
        }
        let footerLength = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: bytes.count - 8, as: UInt32.self)))
        guard footerLength <= bytes.count - 12 else {
            throw UserError("\(path): a footer of \(footerLength) bytes in a file of \(bytes.count) (truncated or corrupt)")
        }
        let footerStart = bytes.count - 8 - footerLength
        let metadata = try FileMetadata.decode(UnsafeRawBufferPointer(rebasing: bytes[footerStart..<(bytes.count - 8)]),
                                               what: "\(path): footer")
        createdBy = metadata.createdBy
        columns = try ParquetColumn.flatSchema(metadata.schema, path: path)

        var starts = [0]
        for (index, group) in metadata.rowGroups.enumerated() {
            let what = "\(path): row group \(index)"
            guard group.columns.count == columns.count else {
                throw UserError("\(what) has \(group.columns.count) column chunks for \(columns.count) columns")
            }
            for (chunk, column) in zip(group.columns, columns) {
                try chunk.check(against: column, rows: group.rowCount, dataEnd: footerStart, what: "\(what): column \(quotedForMessage(column.name))")
            }
            let (end, overflow) = starts.last!.addingReportingOverflow(group.rowCount)
            guard !overflow else { throw UserError("\(what): row counts overflow") }
            starts.append(end)
        }
        guard starts.last! == metadata.rowCount else {
            throw UserError("\(path): the row groups hold \(starts.last!) rows, the footer says \(metadata.rowCount)")
        }
        rowCount = metadata.rowCount
        rowGroupStarts = starts
        rowGroups = metadata.rowGroups
    }

    deinit { pages.drop(file: cacheIdentity) }

    /// Whether column `index` may hold a null: it is optional and a row group's statistics do not say it has none.
    public func mayHoldNulls(column index: Int) -> Bool {
        columns[index].isOptional && rowGroups.contains { ($0.columns[index].nullCount ?? 1) != 0 }
    }

    /// The values of column `index` in `rows` (which must lie in 0..<rowCount); a page that is corrupt, truncated or
    /// in an encoding this reader lacks is a `UserError` naming the file, column and page.
    public func read(column index: Int, rows: Range<Int>) throws -> ParquetColumnData {
        precondition(index >= 0 && index < columns.count && rows.lowerBound >= 0 && rows.upperBound <= rowCount,
                     "ParquetFile.read: column \(index) or rows \(rows) outside the file")
        let column = columns[index]
        if let reason = column.unsupported {
            throw UserError("\(path): column \(quotedForMessage(column.name)) is \(reason), which Plexus does not read")
        }
        var nulls: [Bool] = []
        func collect<Storage: ValueStorage>(_ type: Storage.Type) throws -> Storage {
            var storage = Storage()
            storage.reserveCapacity(rows.count)
            for group in rowGroups.indices {
                let groupRows = rowGroupStarts[group]..<rowGroupStarts[group + 1]
                let wanted = groupRows.clamped(to: rows)
                guard !wanted.isEmpty else { continue }
                try ColumnChunkReader<Storage>(file: self, column: column, chunk: rowGroups[group].columns[index],
                                               rowCount: groupRows.count, group: group)
                    .read((wanted.lowerBound - groupRows.lowerBound)..<(wanted.upperBound - groupRows.lowerBound),
                          into: &storage, nulls: &nulls)
            }
            return storage
        }
        let values: ParquetValues
        switch column.physical {
        case .boolean: values = .booleans(try collect(BooleanStorage.self).values)
        case .int32: values = .int32s(try collect([Int32].self))
        case .int64: values = .int64s(try collect([Int64].self))
        case .float: values = .floats(try collect([Float].self))
        case .double: values = .doubles(try collect([Double].self))
        case .byteArray: values = .byteArrays(try collect(ParquetByteArrays.self))
        case .int96, .fixedLengthByteArray: preconditionFailure("unsupported columns are refused above")
        }
        return ParquetColumnData(column: column, values: values, nulls: nulls.contains(true) ? nulls : nil)
    }
}

/// The values of one column for a range of rows, one slot per row; a null's slot holds 0, false or an empty string.
enum ParquetValues {
    case booleans([Bool])
    case int32s([Int32])
    case int64s([Int64])
    case floats([Float])
    case doubles([Double])
    case byteArrays(ParquetByteArrays)
}

/// One column's values for a range of rows, with which of them are null.
public struct ParquetColumnData {
    /// The column they belong to.
    public let column: ParquetColumn
    /// One value per row.
    let values: ParquetValues
    /// Whether each row is null; nil when none of these rows is.
    let nulls: [Bool]?

    /// Whether row `index` (of these rows) is null.
    func isNull(_ index: Int) -> Bool { nulls?[index] ?? false }

    /// Row `index` as a number in its column's meaning (booleans 0 or 1, unsigned and decimal integers as such,
    /// dates and times as the numbers stored); nil for a null or a byte array.
    public func number(at index: Int) -> Double? {
        guard !isNull(index) else { return nil }
        switch values {
        case let .booleans(values): return values[index] ? 1 : 0
        case let .int32s(values):
            return column.scaled(column.annotation == .unsigned ? Double(UInt32(bitPattern: values[index])) : Double(values[index]))
        case let .int64s(values):
            return column.scaled(column.annotation == .unsigned ? Double(UInt64(bitPattern: values[index])) : Double(values[index]))
        case let .floats(values): return Double(values[index])
        case let .doubles(values): return values[index]
        case .byteArrays: return nil
        }
    }

    /// Writes each row's number as a Float to `destination[row × stride]`, as `number(at:)` reads it; returns the
    /// first row that is null, not a number or not finite as a Float (nil: every row was written).
    public func writeNumbers(to destination: UnsafeMutablePointer<Float>, stride: Int) -> Int? {
        let count = rowCount
        if let nulls, let row = nulls.firstIndex(of: true) { return row }
        switch values {
        case let .floats(values):
            for row in 0..<count {
                guard values[row].isFinite else { return row }
                destination[row * stride] = values[row]
            }
        case let .doubles(values):
            for row in 0..<count {
                let value = Float(values[row])
                guard value.isFinite else { return row }
                destination[row * stride] = value
            }
        default:
            for row in 0..<count {
                guard let number = number(at: row), Float(number).isFinite else { return row }
                destination[row * stride] = Float(number)
            }
        }
        return nil
    }

    /// Rows held.
    var rowCount: Int {
        switch values {
        case let .booleans(values): return values.count
        case let .int32s(values): return values.count
        case let .int64s(values): return values.count
        case let .floats(values): return values.count
        case let .doubles(values): return values.count
        case let .byteArrays(values): return values.count
        }
    }

    /// Row `index` as text: a byte array's UTF-8, nil for a null or a number.
    public func text(at index: Int) -> String? {
        guard !isNull(index), case let .byteArrays(values) = values else { return nil }
        return values.string(at: index)
    }
}
