import Support

/// A shape as numpy prints it: `(60000, 784)`, `(3,)`, `()`.
public func arrayShapeText(_ shape: [Int]) -> String {
    shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
}

/// The header of one `.npy` array (format versions 1.0–3.0): element type, shape, C order only.
public struct NumPyHeader: Equatable {
    /// The element types Plexus reads, all little-endian.
    public enum ElementType: String, CaseIterable {
        case uint8 = "u1", bool = "b1", int32 = "i4", int64 = "i8", float32 = "f4", float64 = "f8"

        /// Bytes per element.
        public var size: Int {
            switch self {
            case .uint8, .bool: return 1
            case .int32, .float32: return 4
            case .int64, .float64: return 8
            }
        }

        /// numpy's name, for messages.
        var name: String {
            switch self {
            case .uint8: return "uint8"
            case .bool: return "bool"
            case .int32: return "int32"
            case .int64: return "int64"
            case .float32: return "float32"
            case .float64: return "float64"
            }
        }
    }

    /// The array's element type.
    public var type: ElementType
    /// The array's dimensions, outermost first.
    public var shape: [Int]
    /// The product of `shape` (1 for a 0-d array).
    public var elementCount: Int

    /// The shape as numpy prints it: `(60000, 784)`, `(3,)`.
    public var shapeText: String { arrayShapeText(shape) }

    /// Largest header accepted (numpy itself refuses headers over 10,000 bytes by default).
    static let maximumHeaderLength = 65536

    /// Reads the magic string, version and header dict of the member `reader` is at; a defect is a `UserError`
    /// "PATH: MEMBER: reason". The data's byte count must be exactly what is left of the member.
    public static func read(from reader: ZipArchive.MemberReader, path: String) throws -> NumPyHeader {
        try read(what: "\(path): \(reader.entry.name)", container: "member", remaining: { reader.remaining }) { count in
            var bytes = [UInt8](repeating: 0, count: count)
            try bytes.withUnsafeMutableBytes { try reader.read(into: $0) }
            return bytes
        }
    }

    /// Reads a header from `next` (which returns the next `count` bytes, at most `remaining()`); `what` names the array
    /// in errors, `container` what holds it ("member", "file"). The data's byte count must be exactly what `remaining()`
    /// is after the header.
    static func read(what member: String, container: String, remaining: () -> Int,
                     next: (Int) throws -> [UInt8]) throws -> NumPyHeader {
        guard remaining() >= 10 else { throw UserError("\(member): not a .npy array (\(remaining()) bytes)") }
        let prefix = try next(10)
        guard prefix[0..<6].elementsEqual([0x93] + Array("NUMPY".utf8)) else {
            throw UserError("\(member): not a .npy array (bad magic string)")
        }
        let major = prefix[6]
        var headerLength = Int(prefix[8]) | Int(prefix[9]) << 8
        switch major {
        case 1: break
        case 2, 3:
            guard remaining() >= 2 else { throw UserError("\(member): truncated .npy header") }
            let high = try next(2)
            headerLength |= Int(high[0]) << 16 | Int(high[1]) << 24
        default:
            throw UserError("\(member): unsupported .npy format version \(major).\(prefix[7])")
        }
        guard headerLength <= min(maximumHeaderLength, remaining()) else {
            throw UserError("\(member): .npy header of \(headerLength) bytes is truncated or too long")
        }
        let header = try parseDictionary(try next(headerLength), member: member)
        let (bytes, overflow) = header.elementCount.multipliedReportingOverflow(by: header.type.size)
        guard !overflow, bytes == remaining() else {
            throw UserError("\(member): shape \(header.shapeText) of \(header.type.name) needs "
                + (overflow ? "more bytes than fit in memory" : "\(bytes) bytes") + ", the \(container) holds \(remaining())")
        }
        return header
    }

    /// Parses numpy's header, a Python dict literal: `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }`.
    static func parseDictionary(_ text: [UInt8], member: String) throws -> NumPyHeader {
        var parser = DictionaryParser(bytes: text, member: member)
        var descr: String?, fortran: Bool?, shape: [Int]?
        try parser.expect("{")
        while !parser.consume("}") {
            let key = try parser.string()
            try parser.expect(":")
            switch key {
            case "descr" where descr == nil:
                guard parser.peek() == UInt8(ascii: "'") || parser.peek() == UInt8(ascii: "\"") else {
                    throw UserError("\(member): structured dtypes are not supported (one numeric column type per array)")
                }
                descr = try parser.string()
            case "fortran_order" where fortran == nil: fortran = try parser.boolean()
            case "shape" where shape == nil: shape = try parser.tuple()
            default: throw parser.error("unexpected key \(quotedForMessage(key)) in the .npy header")
            }
            if !parser.consume(",") {
                try parser.expect("}")
                break
            }
        }
        try parser.expectEnd()
        guard let descr, let fortran, let shape else { throw parser.error("the .npy header lacks descr, fortran_order or shape") }
        guard !fortran else {
            throw UserError("\(member): Fortran-order arrays are not supported (save numpy.ascontiguousarray(a) instead)")
        }
        let supported = ElementType.allCases.map(\.name).joined(separator: ", ")
        guard descr.count == 3, let order = descr.first, let type = ElementType(rawValue: String(descr.dropFirst())) else {
            throw UserError("\(member): unsupported dtype \(quotedForMessage(descr)) (supported: \(supported))")
        }
        guard order == "<" || order == "|" || (order == "=" && isLittleEndian) || (order == ">" && type.size == 1) else {
            throw UserError("\(member): big-endian dtype \(quotedForMessage(descr)) is not supported (save with a little-endian dtype, e.g. astype('<f4'))")
        }
        var count = 1
        for dimension in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard !overflow else { throw parser.error("shape \(shape) is too large") }
            count = product
        }
        return NumPyHeader(type: type, shape: shape, elementCount: count)
    }

    private static var isLittleEndian: Bool { 1.littleEndian == 1 }
}

extension NumPyHeader.ElementType {
    /// Converts `count` little-endian elements at `raw` to Floats at `destination`. Element `firstElement` of the array
    /// comes first, in rows of `rowWidth`; a value that is not finite as a Float is a `UserError` naming `what`, its row
    /// and column (with `allowingNaN`, a NaN is kept).
    public func convert(_ raw: UnsafeRawPointer, count: Int, into destination: UnsafeMutablePointer<Float>,
                        firstElement: Int, rowWidth: Int, what: String, allowingNaN: Bool = false) throws {
        for index in 0..<count {
            let value: Float
            switch self {
            case .uint8, .bool: value = Float(raw.load(fromByteOffset: index, as: UInt8.self))
            case .int32: value = Float(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: index * 4, as: Int32.self)))
            case .int64: value = Float(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: index * 8, as: Int64.self)))
            case .float32:
                value = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self)))
            case .float64:
                value = Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self))))
            }
            guard value.isFinite || (allowingNaN && value.isNaN) else {
                let element = firstElement + index
                throw UserError("\(what): value at row \(element / max(rowWidth, 1)), column \(element % max(rowWidth, 1)) is not "
                    + "finite as a float32 (NaN, infinite or beyond ±3.4e38)")
            }
            destination[index] = value
        }
    }
}

/// A tokenizer for the one Python literal numpy writes as an array header.
private struct DictionaryParser {
    let bytes: [UInt8]
    let member: String
    var position = 0

    init(bytes: [UInt8], member: String) {
        self.bytes = bytes
        self.member = member
    }

    func error(_ reason: String) -> UserError { UserError("\(member): malformed .npy header: \(reason)") }

    mutating func skipSpace() {
        while position < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
    }

    mutating func peek() -> UInt8? {
        skipSpace()
        return position < bytes.count ? bytes[position] : nil
    }

    mutating func consume(_ character: Character) -> Bool {
        guard peek() == character.asciiValue else { return false }
        position += 1
        return true
    }

    mutating func expect(_ character: Character) throws {
        guard consume(character) else { throw error("expected \"\(character)\" at byte \(position)") }
    }

    mutating func expectEnd() throws {
        skipSpace()
        guard position == bytes.count else { throw error("unexpected text after the dict at byte \(position)") }
    }

    /// A quoted string without escapes (numpy's keys and dtype strings have none).
    mutating func string() throws -> String {
        guard let quote = peek(), quote == UInt8(ascii: "'") || quote == UInt8(ascii: "\"") else {
            throw error("expected a quoted string at byte \(position)")
        }
        let start = position + 1
        var end = start
        while end < bytes.count, bytes[end] != quote {
            guard bytes[end] != UInt8(ascii: "\\"), bytes[end] >= 0x20 else { throw error("unexpected character in a string") }
            end += 1
        }
        guard end < bytes.count else { throw error("unterminated string") }
        position = end + 1
        return String(decoding: bytes[start..<end], as: UTF8.self)
    }

    mutating func boolean() throws -> Bool {
        for (word, value) in [("True", true), ("False", false)] {
            skipSpace()
            let utf8 = Array(word.utf8)
            if position + utf8.count <= bytes.count, bytes[position..<(position + utf8.count)].elementsEqual(utf8) {
                position += utf8.count
                return value
            }
        }
        throw error("expected True or False at byte \(position)")
    }

    /// A tuple of non-negative integers: `()`, `(3,)`, `(60000, 784)`.
    mutating func tuple() throws -> [Int] {
        try expect("(")
        var values: [Int] = []
        while !consume(")") {
            skipSpace()
            var value = 0, digits = 0
            while position < bytes.count, bytes[position] >= UInt8(ascii: "0"), bytes[position] <= UInt8(ascii: "9") {
                let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
                let (sum, overflow2) = times.addingReportingOverflow(Int(bytes[position] - UInt8(ascii: "0")))
                guard !overflow1, !overflow2 else { throw error("dimension too large") }
                value = sum
                digits += 1
                position += 1
            }
            // Python writes `5` or, on some platforms, `5L`.
            if position < bytes.count, bytes[position] == UInt8(ascii: "L") { position += 1 }
            guard digits > 0 else { throw error("expected a dimension at byte \(position)") }
            values.append(value)
            if !consume(",") {
                try expect(")")
                break
            }
        }
        return values
    }
}
