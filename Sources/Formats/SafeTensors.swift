/// Formats: readers and writers of files (IDX, CSV, zip, NumPy, safetensors, protobuf, TFRecord) and C libraries opened at run time.

import Foundation
import Support

/// One named float32 tensor as stored in a safetensors file.
public struct TensorRecord: Equatable {
    /// The tensor's key in the file header.
    public var name: String
    /// Dimensions, outermost first; `[]` is a scalar.
    public var shape: [Int]
    /// Row-major values; `values.count` must equal the product of `shape`.
    public var values: [Float]

    /// Makes a tensor record.
    public init(name: String, shape: [Int], values: [Float]) {
        self.name = name
        self.shape = shape
        self.values = values
    }
}

/// Reader and writer for the safetensors format (float32 tensors only).
///
/// Layout: u64 little-endian header length N, N bytes of JSON header (space-padded to a multiple of 8),
/// then the tensors' little-endian bytes, with `data_offsets` relative to the start of that data.
public enum SafeTensors {
    /// Largest header accepted, as in the reference implementation (guards against absurd allocations).
    static let maximumHeaderLength = 100_000_000

    /// Serializes tensors (in the given order, contiguous) and string metadata into safetensors bytes.
    /// Names must be unique and `values.count` must match `shape`; `write` checks this, `encode` does not.
    static func encode(_ tensors: [TensorRecord], metadata: [String: String]) -> [UInt8] {
        var header = "{"
        var fields: [String] = []
        if !metadata.isEmpty {
            let entries = metadata.keys.sorted().map { key in
                "\(quotedString(key)):\(quotedString(metadata[key] ?? ""))"
            }
            fields.append("\"__metadata__\":{\(entries.joined(separator: ","))}")
        }
        var offset = 0
        for tensor in tensors {
            let end = offset + tensor.values.count * 4
            let shape = tensor.shape.map(String.init).joined(separator: ",")
            fields.append("\(quotedString(tensor.name)):{\"dtype\":\"F32\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        header += fields.joined(separator: ",")
        header += "}"
        var headerBytes = Array(header.utf8)
        // The reference implementation pads with spaces so the data section starts 8-byte aligned.
        headerBytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - headerBytes.count % 8) % 8))

        var bytes: [UInt8] = []
        bytes.reserveCapacity(8 + headerBytes.count + offset)
        appendLittleEndian(UInt64(headerBytes.count), to: &bytes)
        bytes.append(contentsOf: headerBytes)
        for tensor in tensors {
            appendFloats(tensor.values, to: &bytes)
        }
        return bytes
    }

    /// Parses and fully validates safetensors bytes; tensors come back in data-offset order.
    /// Any defect is a `UserError` "PATH: corrupt safetensors: <reason>".
    static func decode(_ bytes: [UInt8], path: String) throws -> (tensors: [TensorRecord], metadata: [String: String]) {
        func corrupt(_ reason: String) -> UserError { UserError("\(path): corrupt safetensors: \(reason)") }

        guard bytes.count >= 8 else {
            throw corrupt("file is \(bytes.count) bytes, shorter than the 8-byte header length")
        }
        var declared: UInt64 = 0
        for index in 0..<8 { declared |= UInt64(bytes[index]) << UInt64(8 * index) }
        guard declared <= UInt64(bytes.count - 8) else {
            throw corrupt("header length \(declared) runs past the end of the \(bytes.count)-byte file")
        }
        let headerLength = Int(declared)
        guard headerLength <= maximumHeaderLength else {
            throw corrupt("header length \(headerLength) exceeds the \(maximumHeaderLength)-byte limit")
        }
        guard headerLength >= 2, bytes[8] == UInt8(ascii: "{") else {
            throw corrupt("header is not a JSON object")
        }
        let headerData = Data(bytes[8..<(8 + headerLength)])
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: headerData, options: [])
        } catch {
            throw corrupt("header is not valid JSON")
        }
        guard let header = parsed as? [String: Any] else { throw corrupt("header is not a JSON object") }

        var metadata: [String: String] = [:]
        if let rawMetadata = header["__metadata__"] {
            if !(rawMetadata is NSNull) {
                guard let table = rawMetadata as? [String: Any] else {
                    throw corrupt("\"__metadata__\" is not an object of strings")
                }
                // Sorted, so a file with several defects always reports the same one (dictionary order varies per run).
                for key in table.keys.sorted() {
                    guard let text = table[key] as? String else {
                        throw corrupt("\"__metadata__\" value for \(quotedForMessage(key)) is not a string")
                    }
                    metadata[key] = text
                }
            }
        }

        struct Entry {
            var name: String
            var shape: [Int]
            var begin: Int
            var end: Int
        }
        var entries: [Entry] = []
        for name in header.keys.sorted() where name != "__metadata__" {
            guard let entry = header[name] as? [String: Any] else { throw corrupt("tensor \(quotedForMessage(name)) is not an object") }
            guard let dtype = entry["dtype"] as? String else { throw corrupt("tensor \(quotedForMessage(name)) has no \"dtype\"") }
            guard dtype == "F32" else {
                throw corrupt("tensor \(quotedForMessage(name)) has dtype \(quotedForMessage(dtype)); only F32 is supported")
            }
            guard let rawShape = entry["shape"] as? [Any] else { throw corrupt("tensor \(quotedForMessage(name)) has no \"shape\" list") }
            var shape: [Int] = []
            var elementCount = 1
            for rawDimension in rawShape {
                guard let dimension = exactInteger(rawDimension), dimension >= 0 else {
                    throw corrupt("tensor \(quotedForMessage(name)) has a shape entry that is not a non-negative integer")
                }
                let (product, overflow) = elementCount.multipliedReportingOverflow(by: dimension)
                guard !overflow, product <= Int.max / 8 else { throw corrupt("tensor \(quotedForMessage(name)) shape is too large") }
                elementCount = product
                shape.append(dimension)
            }
            guard let rawOffsets = entry["data_offsets"] as? [Any], rawOffsets.count == 2 else {
                throw corrupt("tensor \(quotedForMessage(name)) has no \"data_offsets\" pair")
            }
            guard let begin = exactInteger(rawOffsets[0]), let end = exactInteger(rawOffsets[1]), begin >= 0, begin <= end else {
                throw corrupt("tensor \(quotedForMessage(name)) has invalid data_offsets")
            }
            guard end - begin == elementCount * 4 else {
                throw corrupt("tensor \(quotedForMessage(name)) data_offsets span \(end - begin) bytes but shape \(shape) needs \(elementCount * 4)")
            }
            entries.append(Entry(name: name, shape: shape, begin: begin, end: end))
        }

        let dataStart = 8 + headerLength
        let dataLength = bytes.count - dataStart
        entries.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        // Like the reference reader: tensors must tile the data section exactly, without gaps or overlap.
        var expectedBegin = 0
        for entry in entries {
            if entry.begin < expectedBegin {
                throw corrupt("tensor \(quotedForMessage(entry.name)) data_offsets overlap another tensor")
            }
            if entry.begin > expectedBegin {
                throw corrupt("gap in the data section before tensor \(quotedForMessage(entry.name))")
            }
            guard entry.end <= dataLength else {
                throw corrupt("tensor \(quotedForMessage(entry.name)) data_offsets [\(entry.begin), \(entry.end)] run past the \(dataLength)-byte data section")
            }
            expectedBegin = entry.end
        }
        guard expectedBegin == dataLength else {
            throw corrupt("data section is \(dataLength) bytes but the tensors cover \(expectedBegin)")
        }

        let tensors = entries.map { entry -> TensorRecord in
            let values = readFloats(bytes, from: dataStart + entry.begin, count: (entry.end - entry.begin) / 4)
            return TensorRecord(name: entry.name, shape: entry.shape, values: values)
        }
        return (tensors, metadata)
    }

    /// Reads and validates a safetensors file.
    public static func read(path: String) throws -> (tensors: [TensorRecord], metadata: [String: String]) {
        try decode(FileIO.readBytes(path: path), path: path)
    }

    /// Writes a safetensors file atomically (the old file survives any failure).
    public static func write(_ tensors: [TensorRecord], metadata: [String: String], to path: String) throws {
        var seen = Set<String>()
        for tensor in tensors {
            guard tensor.name != "__metadata__", seen.insert(tensor.name).inserted else {
                throw UserError("\(path): cannot write: duplicate or reserved tensor name \(quotedForMessage(tensor.name))")
            }
            let expected = tensor.shape.reduce(1, *)
            guard tensor.shape.allSatisfy({ $0 >= 0 }), expected == tensor.values.count else {
                throw UserError("\(path): cannot write: tensor \(quotedForMessage(tensor.name)) has \(tensor.values.count) values but shape \(tensor.shape)")
            }
        }
        try FileIO.writeAtomically(encode(tensors, metadata: metadata), to: path)
    }

    /// Hex SHA-256 of all tensors' float32 little-endian bytes, concatenated in the given order.
    public static func sha256OfValues(_ tensors: [TensorRecord]) -> String {
        var hasher = SHA256()
        for tensor in tensors {
            #if _endian(little)
            tensor.values.withUnsafeBytes { hasher.update($0) }
            #else
            var bytes: [UInt8] = []
            appendFloats(tensor.values, to: &bytes)
            hasher.update(bytes: bytes)
            #endif
        }
        return SHA256.hex(hasher.finalize())
    }

    // MARK: - Helpers

    /// JSON numbers written as integers (rejects 2.5, 3.0, true, "3"), as the reference reader does.
    static func exactInteger(_ value: Any) -> Int? {
        guard let number = value as? NSNumber else { return nil }
        // JSON booleans bridge to NSNumber with type "c"; floating-point literals have "d".
        switch String(cString: number.objCType) {
        case "s", "i", "l", "q":
            return Int(exactly: number.int64Value)
        case "S", "I", "L", "Q":
            let unsigned = number.uint64Value
            return unsigned <= UInt64(Int.max) ? Int(unsigned) : nil
        default:
            return nil
        }
    }

    static func appendLittleEndian(_ value: UInt64, to bytes: inout [UInt8]) {
        for index in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(8 * index))) }
    }

    static func appendFloats(_ values: [Float], to bytes: inout [UInt8]) {
        #if _endian(little)
        values.withUnsafeBytes { bytes.append(contentsOf: $0) }
        #else
        for value in values {
            let bits = value.bitPattern
            for index in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: bits >> UInt32(8 * index))) }
        }
        #endif
    }

    static func readFloats(_ bytes: [UInt8], from start: Int, count: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            bytes.withUnsafeBytes { raw in
                for index in 0..<count {
                    let bits = raw.loadUnaligned(fromByteOffset: start + index * 4, as: UInt32.self)
                    buffer[index] = Float(bitPattern: UInt32(littleEndian: bits))
                }
            }
            initialized = count
        }
    }
}
