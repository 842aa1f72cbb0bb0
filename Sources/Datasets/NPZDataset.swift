// NumPy input: an .npz (numpy.savez or savez_compressed) holding the features as `x` or `X` [N, F] (or [N, ...],
// flattened per row as IDX images are) and the targets as `y` [N] or [N, T].
import Formats
import Support

extension Dataset {
    /// Loads an .npz file; `targetNames` names y's columns (their count must match), else `y` or `y_0`, `y_1`, ....
    /// An uncompressed uint8 `x` stays in the file's mapped bytes; other dtypes become Floats. With
    /// `requireTargets: false` (prediction inputs) `y` may be absent. `arrays` names other members than x (or X)
    /// and y. With `gapsAllowed` a NaN feature is kept (a gap the column rules fill), else it is an error.
    static func loadNPZ(path: String, targetNames: [String]? = nil, requireTargets: Bool = true,
                        arrays: (features: String?, targets: String?) = (nil, nil), gapsAllowed: Bool = false) throws -> Dataset {
        try fromNPZ(FileBytes(mapping: path), path: path, targetNames: targetNames, requireTargets: requireTargets,
                    arrays: arrays, gapsAllowed: gapsAllowed)
    }

    /// Makes a dataset from the bytes of an .npz file; `path` names it in errors.
    static func fromNPZ(_ file: FileBytes, path: String, targetNames: [String]? = nil, requireTargets: Bool = true,
                        arrays named: (features: String?, targets: String?) = (nil, nil),
                        gapsAllowed: Bool = false) throws -> Dataset {
        let archive = try ZipArchive(file, path: path)
        let arrays = archive.entries.map(\.name).filter { $0.hasSuffix(".npy") }.map { String($0.dropLast(4)) }
        let listed = arrays.isEmpty ? "none" : arrays.map { quotedForMessage($0) }.joined(separator: ", ")
        let featureMembers = (named.features.map { [$0] } ?? ["x", "X"]).compactMap { archive.entry(named: $0 + ".npy") }
        guard featureMembers.count == 1 else {
            throw UserError("\(path): " + (!featureMembers.isEmpty ? "both x and X arrays; keep one"
                : named.features.map { "no features array \(quotedForMessage($0))" } ?? "no features array x or X")
                + " (arrays: \(listed))")
        }
        let targetName = named.targets ?? "y"
        let targetMember = archive.entry(named: targetName + ".npy")
        if requireTargets && targetMember == nil { throw UserError("\(path): no targets array \(targetName) (arrays: \(listed))") }

        // Features: x [N, F, ...] → N rows of F·... values.
        let featureReader = try ZipArchive.MemberReader(archive, featureMembers[0])
        let featureHeader = try NumPyHeader.read(from: featureReader, path: path)
        let x = "\(path): \(featureMembers[0].name)"
        let (rows, width) = try featureRows(shape: featureHeader.shape, what: x)

        // Targets first (small), so a shape mismatch is reported before the features are read.
        var targets: [Float]
        var names: [String]
        if let targetMember {
            let reader = try ZipArchive.MemberReader(archive, targetMember)
            let header = try NumPyHeader.read(from: reader, path: path)
            let y = "\(path): \(targetMember.name)"
            let columns: Int
            (columns, names) = try targetColumns(shape: header.shape, rows: rows, featureShape: featureHeader.shape, what: y,
                                                 pair: "\(path): \(featureMembers[0].name.dropLast(4)) has \(rows) rows but \(targetName)",
                                                 names: targetNames, base: targetName)
            targets = [Float](repeating: 0, count: header.elementCount)
            try targets.withUnsafeMutableBufferPointer {
                try readFloats(reader, header, into: $0, rowWidth: columns, what: y)
            }
            try reader.finish()
        } else {
            names = targetNames ?? [targetName]
            targets = [Float](repeating: 0, count: rows * names.count)
        }

        let features: Features
        if featureHeader.type == .uint8 || featureHeader.type == .bool {
            if let stored = try featureReader.storedBytes(count: featureHeader.elementCount) {
                features = .bytes(ByteStorage(file: file, offset: stored.offset, count: stored.count))
            } else {
                var bytes = [UInt8](repeating: 0, count: featureHeader.elementCount)
                try bytes.withUnsafeMutableBytes { try featureReader.read(into: $0) }
                features = .bytes(ByteStorage(bytes))
            }
        } else if let stored = try featureReader.storedBytes(count: featureHeader.elementCount * featureHeader.type.size) {
            // Stored uncompressed: the rows stay in the mapped file and are read as batches need them.
            let array = try NumPyFile(file, path: x, header: featureHeader, dataOffset: stored.offset)
            features = .file(FileRows([array], width: width))
        } else {
            var values = [Float](repeating: 0, count: featureHeader.elementCount)
            try values.withUnsafeMutableBufferPointer {
                try readFloats(featureReader, featureHeader, into: $0, rowWidth: width, what: x, gapsAllowed: gapsAllowed)
            }
            features = .floats(values)
        }
        try featureReader.finish()
        return Dataset(count: rows, featureCount: width, features: features, targets: targets, targetNames: names, source: path,
                       featureNames: [], origin: .rows(paths: [path], starts: [0]))
    }

    /// Reads `destination.count` elements of `header.type` from `reader` as Floats, a chunk at a time; a value that
    /// is not finite as a Float is a `UserError` naming its row and column.
    private static func readFloats(_ reader: ZipArchive.MemberReader, _ header: NumPyHeader,
                                   into destination: UnsafeMutableBufferPointer<Float>, rowWidth: Int, what: String,
                                   gapsAllowed: Bool = false) throws {
        let size = header.type.size, chunkElements = 16384
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkElements * size, alignment: 16)
        defer { scratch.deallocate() }
        var done = 0
        while done < destination.count {
            let count = min(chunkElements, destination.count - done)
            let chunk = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<(count * size)])
            try reader.read(into: chunk)
            try header.type.convert(UnsafeRawPointer(chunk.baseAddress!), count: count, into: destination.baseAddress! + done,
                                    firstElement: done, rowWidth: rowWidth, what: what, allowingNaN: gapsAllowed)
            done += count
        }
    }
}
