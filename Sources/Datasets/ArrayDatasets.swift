// Features and targets stored as two arrays read by rows: a pair of .npy files ({x: X.npy, y: Y.npy}) or two
// datasets of an HDF5 file (`x` and `y` unless named). Their shapes follow ArrayShapes.swift's rules.
import Formats
import HDF5
import Support

/// A stored array read by rows: a `.npy` file or an HDF5 dataset.
protocol RowArray {
    var shape: [Int] { get }
    var rowWidth: Int { get }
    /// Rows `rows` as Floats (a value not finite as a Float is a `UserError`).
    func readRows(_ rows: Range<Int>, into destination: UnsafeMutableBufferPointer<Float>) throws
    /// The bytes of `rows` in place, when the array stores bytes (so the features need no copy).
    func byteRows(_ rows: Range<Int>) -> ByteStorage?
    /// Starts reading `rows` from disk in the background, where the array is a mapped file.
    func willRead(_ rows: Range<Int>)
    /// Tells the kernel the rows will be read at random, where the array is a mapped file.
    func expectRandomReads()
}

extension RowArray {
    func willRead(_ rows: Range<Int>) {}
    func expectRandomReads() {}
}

extension NumPyFile: RowArray {
    var shape: [Int] { header.shape }
}

extension HDF5Dataset: RowArray {
    func byteRows(_ rows: Range<Int>) -> ByteStorage? { nil }
}

extension Dataset {
    /// Loads a pair of `.npy` files: features `features` [rows, features, ...] and targets `targets` [rows] or
    /// [rows, targets] (absent for prediction inputs, when `requireTargets` is false). A uint8 or bool x stays in the
    /// mapped file.
    static func loadNPY(features: String, targets: String?, targetNames: [String]?, requireTargets: Bool) throws -> Dataset {
        if requireTargets && targets == nil {
            throw UserError("\(features): no targets; give the data as {x: \(features), y: TARGETS.npy}")
        }
        let x = try NumPyFile(path: features)
        let y = try targets.map { try NumPyFile(path: $0) }
        return try fromArrays(features: x, featuresWhat: features, targets: y, targetsWhat: targets ?? "",
                              pair: "\(features) has \(x.rowCount) rows but \(targets ?? "")", base: "y", targetNames: targetNames,
                              paths: [features])
    }

    /// Loads datasets `features` and `targets` of the HDF5 file `path` (only the features are needed when
    /// `requireTargets` is false and the file has no `targets`).
    static func loadHDF5(path: String, features: String, targets: String, targetNames: [String]?,
                         requireTargets: Bool) throws -> Dataset {
        let file = try HDF5File(path: path)
        let x = try file.dataset(features)
        let y: HDF5Dataset? = requireTargets || file.contains(targets) ? try file.dataset(targets) : nil
        return try fromArrays(features: x, featuresWhat: "\(path): \(quotedForMessage(features))", targets: y,
                              targetsWhat: "\(path): \(quotedForMessage(targets))",
                              pair: "\(path): \(quotedForMessage(features)) has \(x.rowCount) rows but \(quotedForMessage(targets))",
                              base: targets.split(separator: "/").last.map(String.init) ?? targets, targetNames: targetNames,
                              paths: [path])
    }

    /// A dataset of a features array and an optional targets array (zeros when absent, one per target name).
    static func fromArrays(features x: RowArray, featuresWhat: String, targets y: RowArray?, targetsWhat: String,
                                   pair: String, base: String, targetNames: [String]?, paths: [String]) throws -> Dataset {
        let (rows, width) = try featureRows(shape: x.shape, what: featuresWhat)
        // Targets first (small), so a shape mismatch is reported before the features are read.
        var targets: [Float], names: [String]
        if let y {
            (_, names) = try targetColumns(shape: y.shape, rows: rows, featureShape: x.shape, what: targetsWhat, pair: pair,
                                           names: targetNames, base: base)
            try checkFitsInMemory(rows: rows, width: names.count, what: targetsWhat)
            targets = [Float](repeating: 0, count: rows * names.count)
            try targets.withUnsafeMutableBufferPointer { try y.readRows(0..<rows, into: $0) }
        } else {
            names = targetNames ?? [base]
            try checkFitsInMemory(rows: rows, width: names.count, what: featuresWhat)
            targets = [Float](repeating: 0, count: rows * names.count)
        }
        // Bytes stay in the mapped file; other types are read by rows as batches need them.
        let features: Features = x.byteRows(0..<rows).map { .bytes($0) } ?? .file(FileRows([x], width: width))
        return Dataset(count: rows, featureCount: width, features: features, targets: targets, targetNames: names,
                       source: paths[0], featureNames: [], origin: .rows(paths: paths, starts: [0]))
    }

    /// One dataset of `parts` (shards) in order: the same features and targets in each; a mismatch is a `UserError`
    /// naming the shard.
    static func concatenating(_ parts: [Dataset]) throws -> Dataset {
        guard let first = parts.first else { throw UserError("no data files") }
        guard parts.count > 1 else { return first }
        var paths: [String] = [], starts: [Int] = [], rows = 0
        for part in parts {
            guard part.featureCount == first.featureCount, part.targetNames == first.targetNames,
                  part.featureNames == first.featureNames else {
                throw UserError("\(part.source): rows of \(part.featureCount) features and targets "
                    + part.targetNames.map { quotedForMessage($0) }.joined(separator: ", ") + " differ from the first shard "
                    + "\(first.source)'s (\(first.featureCount) features; targets "
                    + first.targetNames.map { quotedForMessage($0) }.joined(separator: ", ") + ")")
            }
            guard case let .rows(partPaths, partStarts) = part.origin else { preconditionFailure("shards are files of rows") }
            paths += partPaths
            starts += partStarts.map { $0 + rows }
            rows += part.count
        }
        let files = parts.compactMap { if case let .file(rows) = $0.features { return rows } else { return nil } }
        let features: Features
        if files.count == parts.count {
            features = .file(FileRows(concatenating: files))
        } else if case .bytes = first.features, parts.allSatisfy({ if case .bytes = $0.features { return true } else { return false } }) {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(rows * first.featureCount)
            for part in parts { if case let .bytes(values) = part.features { bytes += values } }
            features = .bytes(ByteStorage(bytes))
        } else {
            var values: [Float] = []
            values.reserveCapacity(rows * first.featureCount)
            for part in parts {
                switch part.features {
                case let .bytes(bytes): values += bytes.map { Float($0) }
                case let .floats(floats): values += floats
                case let .file(file):
                    // Shards of which only some stay in their files (compressed and stored npz members): all in memory.
                    var read = [Float](repeating: 0, count: file.count * file.width)
                    try read.withUnsafeMutableBufferPointer { try file.read(0..<file.count, into: $0.baseAddress!) }
                    values += read
                }
            }
            features = .floats(values)
        }
        return Dataset(count: rows, featureCount: first.featureCount, features: features, targets: parts.flatMap(\.targets),
                       targetNames: first.targetNames, source: first.source, featureNames: first.featureNames,
                       origin: .rows(paths: paths, starts: starts))
    }
}
