// Numeric Parquet tables read by rows: the feature columns stay in the file, and the rows a batch needs are decoded
// from the column chunks of their row groups, a slab of rows at a time, into a cache of decoded slabs bounded in bytes.
import Formats
import Parquet
import Support
import Tables

/// The feature columns of one Parquet file as rows of Floats, read by row ranges through `DecodedSlabs.shared`.
final class ParquetRows: RowArray {
    let file: ParquetFile
    /// The file's columns that are features, in order.
    let columns: [Int]
    /// Rows per slab: a power of two of about `DecodedSlabs.slabBytes`; slabs start at their row group's first row.
    let slabRows: Int
    /// Where decoded slabs are kept.
    let cache: DecodedSlabs
    /// Tells this file's slabs from every other's in the cache.
    let identity: Int

    var shape: [Int] { [file.rowCount, columns.count] }
    var rowWidth: Int { columns.count }

    /// Columns `columns` of `file`, decoded `slabRows` rows at a time (default: about `DecodedSlabs.slabBytes`) into `cache`.
    init(_ file: ParquetFile, columns: [Int], slabRows: Int? = nil, cache: DecodedSlabs = .shared) {
        (self.file, self.columns, self.cache) = (file, columns, cache)
        self.slabRows = slabRows ?? ParquetRows.slabRows(width: columns.count)
        identity = cache.newIdentity()
    }

    deinit { cache.forget(identity) }

    /// Rows per slab for rows of `width` values: the largest power of two that fits `DecodedSlabs.slabBytes`.
    static func slabRows(width: Int) -> Int {
        var rows = 1
        while rows * 2 * width * MemoryLayout<Float>.size <= DecodedSlabs.slabBytes { rows *= 2 }
        return rows
    }

    func byteRows(_ rows: Range<Int>) -> ByteStorage? { nil }

    func readRows(_ rows: Range<Int>, into destination: UnsafeMutableBufferPointer<Float>) throws {
        let width = columns.count
        var row = rows.lowerBound
        while row < rows.upperBound {
            let group = file.rowGroupStarts.lastIndex { $0 <= row }!
            let groupStart = file.rowGroupStarts[group]
            let slab = (row - groupStart) / slabRows
            let slabStart = groupStart + slab * slabRows
            let slabEnd = min(slabStart + slabRows, file.rowGroupStarts[group + 1])
            let end = min(rows.upperBound, slabEnd)
            let values = try cache.values(DecodedSlabs.Key(file: identity, group: group, slab: slab)) {
                try decode(slabStart..<slabEnd)
            }
            values.withUnsafeBufferPointer { values in
                let source = values.baseAddress! + (row - slabStart) * width
                (destination.baseAddress! + (row - rows.lowerBound) * width).update(from: source, count: (end - row) * width)
            }
            row = end
        }
    }

    /// Rows `rows` of one row group, every feature column decoded, row-major.
    private func decode(_ rows: Range<Int>) throws -> [Float] {
        let width = columns.count
        var values = [Float](repeating: 0, count: rows.count * width)
        try values.withUnsafeMutableBufferPointer { values in
            for (slot, column) in columns.enumerated() {
                let data = try file.read(column: column, rows: rows)
                if let bad = data.writeNumbers(to: values.baseAddress! + slot, stride: width) {
                    throw UserError("\(file.path) (row \(rows.lowerBound + bad)): column \(quotedForMessage(data.column.name)) "
                        + "is null, NaN, infinite or beyond ±3.4e38 (a gap: data.missing fills gaps)")
                }
            }
        }
        return values
    }
}

/// Decoded slabs of Parquet rows, the least recently used dropped first to stay within `budget` bytes; one cache for
/// every Parquet file of the process, used under `FileRows`' lock (the background reader and the main thread take
/// turns).
final class DecodedSlabs: @unchecked Sendable {
    struct Key: Hashable {
        let file: Int
        let group: Int
        let slab: Int
    }

    /// About how many bytes one slab holds.
    static let slabBytes = 1 << 20
    /// The budget when nothing asks for more: enough for a pass through the rows in order.
    static let minimumBudget = 8 << 20
    static let shared = DecodedSlabs()

    private var slabs: [Key: (values: [Float], used: Int)] = [:]
    private var clock = 0
    private var heldBytes = 0
    private var identities = 0
    /// Bytes of decoded rows kept at most (one slab more while it is read).
    private(set) var budget: Int

    /// An empty cache of `budget` bytes.
    init(budget: Int = DecodedSlabs.minimumBudget) { self.budget = budget }

    /// Slabs decoded so far (hits are not counted), for tests.
    private(set) var decodedCount = 0

    /// A number no other file has.
    func newIdentity() -> Int {
        FileRows.withLock { identities += 1; return identities }
    }

    /// Drops the slabs of a file that is gone.
    func forget(_ identity: Int) {
        FileRows.withLock {
            for key in slabs.keys where key.file == identity { heldBytes -= slabs.removeValue(forKey: key)!.values.count * 4 }
        }
    }

    /// Keeps up to `bytes` of decoded rows (never less than `minimumBudget`).
    func reserve(bytes: Int) {
        FileRows.withLock { budget = max(budget, bytes) }
    }

    /// The slab `key`, decoded by `decode` when it is not held; called under `FileRows`' lock.
    func values(_ key: Key, decode: () throws -> [Float]) rethrows -> [Float] {
        clock += 1
        if let held = slabs[key] {
            slabs[key]!.used = clock
            return held.values
        }
        let values = try decode()
        decodedCount += 1
        while heldBytes + values.count * 4 > budget, let oldest = slabs.min(by: { $0.value.used < $1.value.used })?.key {
            heldBytes -= slabs.removeValue(forKey: oldest)!.values.count * 4
        }
        slabs[key] = (values, clock)
        heldBytes += values.count * 4
        return values
    }
}

extension Dataset {
    /// The rows of numeric Parquet files left in their files, or nil when the column rules must see the table: a feature
    /// or target that is not numeric or may hold nulls, or `rules` other than the defaults (categories, fills, gap
    /// indicators, sample weights). Targets are read into memory; a missing target column is a `UserError` with
    /// `requireTargets`, else its values are 0.
    static func parquetRows(_ files: [ParquetFile], rules: ColumnRules, targets: [String], classTargets: Bool,
                            requireTargets: Bool) throws -> Dataset? {
        guard rules.categorical.isEmpty, rules.sampleWeight == nil, rules.missing == .error, !rules.missingIndicator,
              let first = files.first else { return nil }
        let names = first.columns.map(\.name)
        guard files.allSatisfy({ $0.columns.map(\.name) == names }) else { return nil } // the table path names the mismatch
        // A missing target is the table path's message; classes named by text need the table (here: absent targets).
        if (requireTargets || classTargets), !targets.allSatisfy(names.contains) { return nil }
        let features = names.indices.filter { !targets.contains(names[$0]) }
        guard !features.isEmpty else { return nil }
        for file in files {
            for column in names.indices where !file.columns[column].isNumeric || file.mayHoldNulls(column: column) {
                return nil
            }
        }
        var rows = 0, starts: [Int] = []
        for file in files {
            starts.append(rows)
            let (sum, overflow) = rows.addingReportingOverflow(file.rowCount)
            guard !overflow else { throw UserError("\(file.path): the files declare more rows than fit in memory") }
            rows = sum
        }
        guard rows > 0 else { throw UserError("\(first.path): no rows") }
        try checkFitsInMemory(rows: rows, width: targets.count, what: first.path)
        var values = [Float](repeating: 0, count: rows * targets.count)
        try values.withUnsafeMutableBufferPointer { values in
            for (file, start) in zip(files, starts) {
                for (slot, name) in targets.enumerated() {
                    guard let column = names.firstIndex(of: name) else { continue }
                    let data = try file.read(column: column, rows: 0..<file.rowCount)
                    let base = values.baseAddress! + start * targets.count + slot
                    guard let bad = data.writeNumbers(to: base, stride: targets.count) else { continue }
                    guard !requireTargets else {
                        throw UserError("\(file.path) (row \(bad)): target \(quotedForMessage(name)) is not a finite number")
                    }
                    // Prediction inputs: a target that is not a number is NaN, as in a table.
                    for row in bad..<file.rowCount { base[row * targets.count] = data.number(at: row).map { Float($0) } ?? .nan }
                }
            }
        }
        let arrays = files.map { ParquetRows($0, columns: features) }
        return Dataset(count: rows, featureCount: features.count, features: .file(FileRows(arrays, width: features.count)),
                       targets: values, targetNames: targets, source: first.path, featureNames: features.map { names[$0] },
                       origin: .rows(paths: files.map(\.path), starts: starts))
    }

    /// Prepares reading the rows from their files in `order`: keeps as many decoded Parquet rows as it needs to
    /// decode each slab about once an epoch (one window of `blocks`, every slab for `rows`, which visits them all in
    /// any order, the minimum for `none`), and for `rows` tells the kernel that mapped files are read at random.
    public func prepareReads(for order: EpochOrder) {
        guard case let .file(file) = features else { return }
        switch order.shuffle {
        case .none: return
        case .rows:
            DecodedSlabs.shared.reserve(bytes: .max)
            file.expectRandomReads()
        case .blocks:
            // A block spans its slabs, one more where it starts within a slab, one more where it crosses a row group.
            let slabRows = ParquetRows.slabRows(width: featureCount)
            let slabs = order.windowBlocks * ((order.blockRows + slabRows - 1) / slabRows + 2) + 2
            DecodedSlabs.shared.reserve(bytes: slabs * slabRows * featureCount * MemoryLayout<Float>.size)
        }
    }
}
