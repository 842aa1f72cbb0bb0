import Support

/// A `.npy` file (numpy.save) mapped read-only: its header, and any range of rows read or viewed without reading
/// the rest of the file. Rows are the first dimension; the other dimensions are flattened into each row.
public final class NumPyFile {
    /// The file's path, for messages.
    let path: String
    /// Element type and shape.
    public let header: NumPyHeader
    /// Rows: the first dimension.
    public let rowCount: Int
    /// Elements per row: the product of the other dimensions (1 for a 1-d array).
    public let rowWidth: Int
    private let file: FileBytes
    /// Where the data starts in the file (numpy pads the header so that this is a multiple of 64).
    private let dataOffset: Int

    /// Maps `path` and reads its header; a missing file, another format or a header that disagrees with the file's
    /// size is a `UserError` naming the path.
    public convenience init(path: String) throws {
        try self.init(FileBytes(mapping: path), path: path)
    }

    /// Reads the header of a `.npy` file's bytes; `path` names it in errors.
    init(_ file: FileBytes, path: String) throws {
        self.path = path
        self.file = file
        var position = 0
        let total = file.buffer.count
        header = try NumPyHeader.read(what: path, container: "file", remaining: { total - position }) { count in
            defer { position += count }
            return Array(file.buffer[position..<(position + count)])
        }
        dataOffset = position
        (rowCount, rowWidth) = try NumPyFile.rows(of: header, path: path)
    }

    /// The array whose header `header` was read and whose data starts at `dataOffset` of `file` (an uncompressed
    /// `.npz` member); `path` names it in errors.
    public init(_ file: FileBytes, path: String, header: NumPyHeader, dataOffset: Int) throws {
        precondition(dataOffset >= 0 && dataOffset <= file.buffer.count - header.elementCount * header.type.size,
                     "NumPyFile: data outside the file")
        (self.path, self.file, self.header, self.dataOffset) = (path, file, header, dataOffset)
        (rowCount, rowWidth) = try NumPyFile.rows(of: header, path: path)
    }

    /// Rows and values per row of an array of `header`'s shape.
    private static func rows(of header: NumPyHeader, path: String) throws -> (count: Int, width: Int) {
        guard let rows = header.shape.first else {
            throw UserError("\(path): a 0-d array (shape ()), expected rows: [rows] or [rows, features, ...]")
        }
        return (rows, rows == 0 ? header.shape.dropFirst().reduce(1, *) : header.elementCount / rows)
    }

    /// Writes the elements of `rows` as Floats to `destination` (which holds `rows.count × rowWidth`); a value that
    /// is not finite as a Float is a `UserError` naming the file, row and column.
    public func readRows(_ rows: Range<Int>, into destination: UnsafeMutableBufferPointer<Float>) throws {
        precondition(rows.lowerBound >= 0 && rows.upperBound <= rowCount && destination.count == rows.count * rowWidth,
                     "NumPyFile.readRows: rows \(rows) outside 0..<\(rowCount) or a destination of the wrong size")
        guard let base = file.buffer.baseAddress, let output = destination.baseAddress, !destination.isEmpty else { return }
        let first = rows.lowerBound * rowWidth
        try header.type.convert(base + dataOffset + first * header.type.size, count: destination.count, into: output,
                                firstElement: first, rowWidth: rowWidth, what: path)
    }

    /// Asks the kernel to start reading the bytes of `rows` from disk now (see `FileBytes.willRead`).
    public func willRead(_ rows: Range<Int>) {
        let rowBytes = rowWidth * header.type.size
        file.willRead((dataOffset + rows.lowerBound * rowBytes)..<(dataOffset + rows.upperBound * rowBytes))
    }

    /// Tells the kernel the rows are read at random (see `FileBytes.expectRandomReads`).
    public func expectRandomReads() { file.expectRandomReads() }

    /// The bytes of `rows` in place (no copy) for a uint8 or bool array; nil for other element types.
    public func byteRows(_ rows: Range<Int>) -> ByteStorage? {
        precondition(rows.lowerBound >= 0 && rows.upperBound <= rowCount, "NumPyFile.byteRows: rows \(rows) outside 0..<\(rowCount)")
        guard header.type.size == 1 else { return nil }
        return ByteStorage(file: file, offset: dataOffset + rows.lowerBound * rowWidth, count: rows.count * rowWidth)
    }
}
