import CZlib

/// An n-dimensional array of unsigned bytes read from an IDX file.
public struct IDXArray: Equatable {
    /// Dimension sizes, outermost (item count) first.
    public let dimensions: [Int]
    /// Row-major data, exactly the product of `dimensions` bytes.
    public let bytes: [UInt8]

    /// Makes an array; `bytes.count` should equal the product of `dimensions`.
    public init(dimensions: [Int], bytes: [UInt8]) {
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
    public static func decode(_ fileBytes: [UInt8], path: String) throws -> IDXArray {
        if fileBytes.count >= 2, fileBytes[0] == 0x1f, fileBytes[1] == 0x8b {
            return try parse(gunzip(fileBytes, path: path), path: path)
        }
        return try parse(fileBytes, path: path)
    }

    /// Parses uncompressed IDX bytes; `path` is only used in error messages.
    public static func parse(_ bytes: [UInt8], path: String) throws -> IDXArray {
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

    /// Inflates a gzip stream (all concatenated members), sizing the output from the ISIZE trailer as a hint only.
    static func gunzip(_ compressed: [UInt8], path: String) throws -> [UInt8] {
        // ISIZE is the uncompressed length mod 2^32 of the last member; it may be wrong, so it only seeds capacity.
        var capacity = compressed.count * 4
        if compressed.count >= 18 {
            let tail = compressed.count - 4
            let hint = Int(compressed[tail]) | Int(compressed[tail + 1]) << 8 | Int(compressed[tail + 2]) << 16 | Int(compressed[tail + 3]) << 24
            if hint > 0, hint <= compressed.count * 1100 { capacity = hint }
        }
        var output = [UInt8](repeating: 0, count: max(capacity, 1024))
        var produced = 0

        var stream = z_stream()
        guard inflateInit2_(&stream, 16 + MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw UserError("\(path): cannot initialize gzip decompression")
        }
        defer { inflateEnd(&stream) }

        try compressed.withUnsafeBufferPointer { input in
            guard let inputBase = input.baseAddress else { return }
            var consumed = 0
            while true {
                let chunk = min(input.count - consumed, Int(UInt32.max / 2))
                stream.next_in = UnsafeMutablePointer(mutating: inputBase + consumed)
                stream.avail_in = UInt32(chunk)
                if produced == output.count { output.append(contentsOf: repeatElement(0, count: output.count)) }
                let room = min(output.count - produced, Int(UInt32.max / 2))
                let status: Int32 = output.withUnsafeMutableBufferPointer { buffer in
                    stream.next_out = buffer.baseAddress.map { $0 + produced }
                    stream.avail_out = UInt32(room)
                    return inflate(&stream, Z_NO_FLUSH)
                }
                consumed += chunk - Int(stream.avail_in)
                produced += room - Int(stream.avail_out)
                switch status {
                case Z_STREAM_END:
                    // gzip allows several concatenated members; trailing bytes that are not another member are ignored.
                    if consumed + 2 <= input.count, input[consumed] == 0x1f, input[consumed + 1] == 0x8b {
                        guard inflateReset(&stream) == Z_OK else { throw corruptGzip(path, &stream) }
                        continue
                    }
                    return
                case Z_OK:
                    continue
                case Z_BUF_ERROR:
                    // No progress: either the output is full (grow and retry) or the input ended early.
                    if produced < output.count && consumed >= input.count {
                        throw UserError("\(path): corrupt gzip data (stream ends early; is the file truncated?)")
                    }
                    continue
                default:
                    throw corruptGzip(path, &stream)
                }
            }
        }
        output.removeSubrange(produced..<output.count)
        return output
    }

    private static func corruptGzip(_ path: String, _ stream: inout z_stream) -> UserError {
        let detail = stream.msg.map { String(cString: $0) } ?? "invalid data"
        return UserError("\(path): corrupt gzip data (\(detail))")
    }
}
