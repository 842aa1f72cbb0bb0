// The shape rules of data stored as two arrays, features x [rows, features, ...] and targets y [rows] or
// [rows, targets] (npz members, .npy files, HDF5 datasets), checked the same way for each.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Formats
import Support

extension Dataset {
    /// The rows and row width of a features array `what` of `shape` ([rows, features, ...], flattened per row): it
    /// must have rows and each row values.
    static func featureRows(shape: [Int], what: String) throws -> (rows: Int, width: Int) {
        guard shape.count >= 2 else { throw UserError("\(what): shape \(arrayShapeText(shape)), expected [rows, features]") }
        let rows = shape[0]
        guard rows > 0 else { throw UserError("\(what): no rows (shape \(arrayShapeText(shape)))") }
        let width = shape.dropFirst().reduce(1) { $0.multipliedReportingOverflow(by: $1).partialValue }
        guard width > 0 else { throw UserError("\(what): rows have no features (shape \(arrayShapeText(shape)))") }
        return (rows, width)
    }

    /// The target columns of a targets array `what` of `shape` ([rows] or [rows, targets]) beside `rows` feature rows,
    /// and their names: `names` when given (their count must match), else `base` or `base_0`, `base_1`, ...
    /// `pair` names both arrays in a row-count mismatch ("PATH: x has 5 rows but y has 4").
    static func targetColumns(shape: [Int], rows: Int, featureShape: [Int], what: String, pair: String, names: [String]?,
                              base: String) throws -> (columns: Int, names: [String]) {
        guard shape.count == 1 || shape.count == 2 else {
            throw UserError("\(what): shape \(arrayShapeText(shape)), expected [rows] or [rows, targets]")
        }
        guard shape[0] == rows else {
            throw UserError("\(pair) has \(shape[0]) (shapes \(arrayShapeText(featureShape)) and \(arrayShapeText(shape)))")
        }
        let columns = shape.count == 2 ? shape[1] : 1
        guard columns > 0 else { throw UserError("\(what): no target columns (shape \(arrayShapeText(shape)))") }
        if let names, names.count != columns {
            throw UserError("\(what): \(columns) target column\(columns == 1 ? "" : "s"), expected \(names.count) ("
                + names.map { quotedForMessage($0) }.joined(separator: ", ") + ")")
        }
        return (columns, names ?? defaultTargetNames(count: columns, base: base))
    }

    /// Checks that `rows × width` float32 values fit this machine's memory before they are allocated (a file may
    /// declare more rows than it holds: a sparse HDF5 dataset, a corrupt Parquet footer); `what` names the data.
    static func checkFitsInMemory(rows: Int, width: Int, what: String) throws {
        let (values, overflow) = rows.multipliedReportingOverflow(by: max(width, 1))
        let memory = Int(sysconf(Int32(_SC_PHYS_PAGES))) &* Int(sysconf(Int32(_SC_PAGESIZE)))
        guard overflow || values > memory / MemoryLayout<Float>.size else { return }
        throw UserError("\(what): \(rows) rows of \(width) values as float32 need more than this machine's "
            + "\(memory >> 30) GiB of memory")
    }
}
