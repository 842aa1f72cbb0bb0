// Features that stay in their files: a `.npy` file, an uncompressed `.npz` member or an HDF5 dataset (or shards of
// them) is read by rows as batches need them — a mapping or positioned reads of just those rows — so a rank never
// holds the file in private memory.
import Foundation
import Kernels
import Support

/// The feature rows of one or more row arrays (shards, in order), read by row ranges.
final class FileRows {
    private let arrays: [RowArray]
    /// The first row of each array.
    private let starts: [Int]
    /// Rows in all arrays.
    let count: Int
    /// Values per row.
    let width: Int
    // libhdf5 is not thread-safe: the background reader and the main thread take turns, for every file.
    private static let lock = NSLock()

    /// Runs `body` holding the lock every read of a file row takes.
    static func withLock<Value>(_ body: () throws -> Value) rethrows -> Value {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// The rows of `arrays` in order; every array has rows of `width` values.
    init(_ arrays: [RowArray], width: Int) {
        precondition(arrays.allSatisfy { $0.rowWidth == width }, "FileRows: shards of different widths")
        self.arrays = arrays
        var starts: [Int] = [], count = 0
        for array in arrays {
            starts.append(count)
            count += array.shape.first ?? 0
        }
        (self.starts, self.count, self.width) = (starts, count, width)
    }

    /// The rows of several `FileRows` in order (shards of shards).
    convenience init(concatenating parts: [FileRows]) {
        self.init(parts.flatMap(\.arrays), width: parts[0].width)
    }

    /// Writes rows `rows` (`rows.count × width` Floats) to `destination`; a value not finite as a Float, or a failed
    /// read, is a `UserError` naming the file, row and column.
    func read(_ rows: Range<Int>, into destination: UnsafeMutablePointer<Float>) throws {
        FileRows.lock.lock()
        defer { FileRows.lock.unlock() }
        try forEachShard(of: rows) { array, local, done in
            try array.readRows(local, into: UnsafeMutableBufferPointer(start: destination + done * width, count: local.count * width))
        }
    }

    /// Starts reading `rows` from disk in the background where their files are mapped (`.npy`, `.npz`).
    func willRead(_ rows: Range<Int>) {
        forEachShard(of: rows) { array, local, _ in array.willRead(local) }
    }

    /// Whether `expectRandomReads` was called.
    private(set) var readsAtRandom = false

    /// Tells the kernel every mapped file is read at random (`training.shuffle: rows`).
    func expectRandomReads() {
        readsAtRandom = true
        arrays.forEach { $0.expectRandomReads() }
    }

    /// Calls `body` with each array `rows` span, its rows there, and how many of `rows` came before them.
    private func forEachShard(of rows: Range<Int>, _ body: (RowArray, Range<Int>, Int) throws -> Void) rethrows {
        precondition(rows.lowerBound >= 0 && rows.upperBound <= count, "FileRows: rows \(rows) outside 0..<\(count)")
        var row = rows.lowerBound
        while row < rows.upperBound {
            let shard = starts.lastIndex { $0 <= row }!
            let end = min(rows.upperBound, shard + 1 < starts.count ? starts[shard + 1] : count)
            try body(arrays[shard], (row - starts[shard])..<(end - starts[shard]), row - rows.lowerBound)
            row = end
        }
    }

    /// Reads every row once, a slice of them on each of `parts` callers: part `part` reads its slice and throws at
    /// the first value that is not finite as a Float.
    func verify(part: Int, of parts: Int) throws {
        let slice = chunkRange(part, of: parts, total: count)
        let chunkRows = max(1, 4096 * 64 / max(width, 1))
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: chunkRows * width)
        defer { scratch.deallocate() }
        for start in stride(from: slice.lowerBound, to: slice.upperBound, by: chunkRows) {
            try read(start..<min(start + chunkRows, slice.upperBound), into: scratch)
        }
    }
}

extension Dataset {
    /// Whether the features are read from their files as rows are gathered (a background reader then helps).
    public var readsFromFiles: Bool {
        if case .file = features { return true }
        return false
    }

    /// Starts reading the features of `rows` from disk in the background, where they stay in mapped files read at
    /// random (a reader ahead of the steps calls it for the batches it has queued). Rows of `shuffle: blocks` or
    /// `none` are left to the kernel's read-around, whose large sequential reads are faster than asking for each
    /// row's pages (0.65–0.74× the samples/s when asked, 2 ranks).
    public func willRead(rows: UnsafeBufferPointer<Int32>) {
        guard case let .file(file) = features, file.readsAtRandom else { return }
        for row in rows {
            let stored = storageRow(Int(row))
            file.willRead(stored..<(stored + 1))
        }
    }

    /// Every row's raw features as Floats, in row order (for checks and tests; training reads only the rows it needs).
    func rawFeatureValues() throws -> [Float] {
        let pass = featurePass
        var values = [Double](repeating: 0, count: pass.count * pass.width)
        try values.withUnsafeMutableBufferPointer { try pass.load(0..<pass.count, $0) }
        return values.map { Float($0) }
    }
}
