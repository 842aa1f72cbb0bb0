// NumPy input: an .npz (numpy.savez or savez_compressed) holding the features as `x` or `X` [N, F] (or [N, ...],
// flattened per row as IDX images are) and the targets as `y` [N] or [N, T].
import Formats
import Support

extension Dataset {
    /// Loads an .npz file; `targetNames` names y's columns (their count must match), else `y` or `y_0`, `y_1`, ....
    /// An uncompressed uint8 `x` stays in the file's mapped bytes; other dtypes become Floats. With
    /// `requireTargets: false` (prediction inputs) `y` may be absent. With `gapsAllowed` a NaN in x is kept (a gap
    /// the column rules fill), else it is an error.
    static func loadNPZ(path: String, targetNames: [String]? = nil, requireTargets: Bool = true,
                        gapsAllowed: Bool = false) throws -> Dataset {
        try fromNPZ(FileBytes(mapping: path), path: path, targetNames: targetNames, requireTargets: requireTargets,
                    gapsAllowed: gapsAllowed)
    }

    /// Makes a dataset from the bytes of an .npz file; `path` names it in errors.
    static func fromNPZ(_ file: FileBytes, path: String, targetNames: [String]? = nil,
                        requireTargets: Bool = true, gapsAllowed: Bool = false) throws -> Dataset {
        let archive = try ZipArchive(file, path: path)
        let arrays = archive.entries.map(\.name).filter { $0.hasSuffix(".npy") }.map { String($0.dropLast(4)) }
        let listed = arrays.isEmpty ? "none" : arrays.map { quotedForMessage($0) }.joined(separator: ", ")
        let featureMembers = ["x.npy", "X.npy"].compactMap { archive.entry(named: $0) }
        guard featureMembers.count == 1 else {
            throw UserError("\(path): " + (featureMembers.isEmpty ? "no features array x or X" : "both x and X arrays; keep one")
                + " (arrays: \(listed))")
        }
        let targetMember = archive.entry(named: "y.npy")
        if requireTargets && targetMember == nil { throw UserError("\(path): no targets array y (arrays: \(listed))") }

        // Features: x [N, F, ...] → N rows of F·... values.
        let featureReader = try ZipArchive.MemberReader(archive, featureMembers[0])
        let featureHeader = try NumPyHeader.read(from: featureReader, path: path)
        let x = "\(path): \(featureMembers[0].name)"
        guard featureHeader.shape.count >= 2 else {
            throw UserError("\(x): shape \(featureHeader.shapeText), expected [rows, features]")
        }
        let rows = featureHeader.shape[0]
        guard rows > 0 else { throw UserError("\(x): no rows (shape \(featureHeader.shapeText))") }
        let width = featureHeader.elementCount / rows
        guard width > 0 else { throw UserError("\(x): rows have no features (shape \(featureHeader.shapeText))") }

        // Targets first (small), so a shape mismatch is reported before the features are read.
        var targets: [Float]
        var names: [String]
        if let targetMember {
            let reader = try ZipArchive.MemberReader(archive, targetMember)
            let header = try NumPyHeader.read(from: reader, path: path)
            let y = "\(path): y.npy"
            guard header.shape.count == 1 || header.shape.count == 2 else {
                throw UserError("\(y): shape \(header.shapeText), expected [rows] or [rows, targets]")
            }
            guard header.shape[0] == rows else {
                throw UserError("\(path): x has \(rows) rows but y has \(header.shape[0]) (shapes \(featureHeader.shapeText) and \(header.shapeText))")
            }
            let columns = header.shape.count == 2 ? header.shape[1] : 1
            guard columns > 0 else { throw UserError("\(y): no target columns (shape \(header.shapeText))") }
            if let targetNames, targetNames.count != columns {
                throw UserError("\(y): \(columns) target column\(columns == 1 ? "" : "s"), expected \(targetNames.count) ("
                    + targetNames.map { quotedForMessage($0) }.joined(separator: ", ") + ")")
            }
            names = targetNames ?? defaultTargetNames(count: columns, base: "y")
            targets = [Float](repeating: 0, count: header.elementCount)
            try targets.withUnsafeMutableBufferPointer {
                try readFloats(reader, header, into: $0, rowWidth: columns, what: y)
            }
            try reader.finish()
        } else {
            names = targetNames ?? ["y"]
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
        } else {
            var values = [Float](repeating: 0, count: featureHeader.elementCount)
            try values.withUnsafeMutableBufferPointer {
                try readFloats(featureReader, featureHeader, into: $0, rowWidth: width, what: x, gapsAllowed: gapsAllowed)
            }
            features = .floats(values)
        }
        try featureReader.finish()
        return Dataset(count: rows, featureCount: width, features: features, targets: targets, targetNames: names, source: path,
                       featureNames: [], origin: .npz(path: path))
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
            let raw = UnsafeRawBufferPointer(chunk)
            for index in 0..<count {
                let value: Float
                switch header.type {
                case .uint8, .bool: value = Float(raw[index])
                case .int32: value = Float(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: index * 4, as: Int32.self)))
                case .int64: value = Float(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: index * 8, as: Int64.self)))
                case .float32:
                    value = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self)))
                case .float64:
                    value = Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self))))
                }
                guard value.isFinite || (gapsAllowed && value.isNaN) else {
                    let element = done + index
                    if value.isNaN && (what.hasSuffix("x.npy") || what.hasSuffix("X.npy")) {
                        throw UserError("\(what): value at row \(element / rowWidth), column \(element % rowWidth) is NaN, a gap "
                            + "(set data.missing to mean, median or zero to fill gaps)")
                    }
                    throw UserError("\(what): value at row \(element / rowWidth), column \(element % rowWidth) is not finite "
                        + "as a float32 (NaN, infinite or beyond ±3.4e38)")
                }
                destination[done + index] = value
            }
            done += count
        }
    }
}
