import Support

/// An n-dimensional array of unsigned bytes read from an IDX file.
public struct IDXArray: Equatable {
    /// Dimension sizes, outermost (item count) first.
    public let dimensions: [Int]
    /// Row-major data, exactly the product of `dimensions` bytes.
    public let bytes: [UInt8]

    /// Makes an array; `bytes.count` should equal the product of `dimensions`.
    init(dimensions: [Int], bytes: [UInt8]) {
        self.dimensions = dimensions
        self.bytes = bytes
    }
}

/// Reader for the IDX format used by MNIST-style datasets (unsigned-byte data only, optionally gzipped).
///
/// Trailing bytes after the data the dimensions describe are ignored.
public enum IDX {
    /// Reads an IDX file, gunzipping it first when it starts with the gzip magic bytes.
    public static func read(path: String) throws -> IDXArray {
        try decode(FileIO.readBytes(path: path), path: path)
    }

    /// Parses the bytes of an IDX file as stored (gunzipped first when they start with the gzip magic bytes);
    /// `path` is only used in error messages.
    static func decode(_ fileBytes: [UInt8], path: String) throws -> IDXArray {
        if fileBytes.count >= 2, fileBytes[0] == 0x1f, fileBytes[1] == 0x8b {
            return try parse(Inflater.gunzip(fileBytes, path: path), path: path)
        }
        return try parse(fileBytes, path: path)
    }

    /// Parses uncompressed IDX bytes; `path` is only used in error messages.
    static func parse(_ bytes: [UInt8], path: String) throws -> IDXArray {
        guard bytes.count >= 4 else {
            throw UserError("\(path): not an IDX file (only \(bytes.count) bytes)")
        }
        guard bytes[0] == 0, bytes[1] == 0 else {
            throw UserError("\(path): not an IDX file (bad magic number; expected two zero bytes)")
        }
        guard bytes[2] == 0x08 else {
            let name = typeNames[bytes[2]].map { " (\($0))" } ?? ""
            throw UserError("\(path): unsupported IDX element type 0x\(String(bytes[2], radix: 16))\(name); only unsigned byte (0x08) is supported")
        }
        let dimensionCount = Int(bytes[3])
        guard dimensionCount >= 1 else { throw UserError("\(path): IDX file declares zero dimensions") }
        let headerLength = 4 + 4 * dimensionCount
        guard bytes.count >= headerLength else {
            throw UserError("\(path): truncated IDX header (\(dimensionCount) dimensions need \(headerLength) bytes, file has \(bytes.count))")
        }
        var dimensions: [Int] = []
        var total = 1
        for index in 0..<dimensionCount {
            let offset = 4 + 4 * index
            let size = Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
            let (product, overflow) = total.multipliedReportingOverflow(by: size)
            guard !overflow else { throw UserError("\(path): IDX dimensions \(dimensions + [size]) are too large") }
            total = product
            dimensions.append(size)
        }
        let available = bytes.count - headerLength
        guard available >= total else {
            let shape = dimensions.map(String.init).joined(separator: "×")
            throw UserError("\(path): truncated IDX data: dimensions \(shape) need \(total) bytes, file has \(available)")
        }
        return IDXArray(dimensions: dimensions, bytes: Array(bytes[headerLength..<(headerLength + total)]))
    }

    /// Finds the image and label files for a prefix such as `data/train`:
    /// `data/train-images-idx3-ubyte[.gz]` and `data/train-labels-idx1-ubyte[.gz]`, uncompressed preferred.
    public static func resolvePrefix(_ prefix: String) throws -> (images: String, labels: String) {
        let imagesBase = prefix + "-images-idx3-ubyte"
        let labelsBase = prefix + "-labels-idx1-ubyte"
        let images = pick(imagesBase)
        let labels = pick(labelsBase)
        switch (images, labels) {
        case let (image?, label?):
            return (image, label)
        case (nil, nil):
            throw UserError("\(imagesBase)[.gz]: no such file (nor \(labelsBase)[.gz]) for data prefix \"\(prefix)\"")
        case (nil, _):
            throw UserError("\(imagesBase)[.gz]: no such file (images for data prefix \"\(prefix)\")")
        case (_, nil):
            throw UserError("\(labelsBase)[.gz]: no such file (labels for data prefix \"\(prefix)\")")
        }
    }

    private static func pick(_ base: String) -> String? {
        if FileIO.fileExists(base) { return base }
        if FileIO.fileExists(base + ".gz") { return base + ".gz" }
        return nil
    }

    private static let typeNames: [UInt8: String] = [
        0x09: "signed byte", 0x0B: "short", 0x0C: "int", 0x0D: "float", 0x0E: "double",
    ]
}
