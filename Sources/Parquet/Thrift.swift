import Support

/// The element types of Thrift's compact protocol (the low nibble of a field or list header).
enum ThriftType: UInt8, CustomStringConvertible {
    case stop = 0, booleanTrue = 1, booleanFalse = 2, byte = 3, int16 = 4, int32 = 5, int64 = 6, double = 7, binary = 8,
         list = 9, set = 10, map = 11, structure = 12

    /// The type with its article, for messages ("expected a string, found an i32").
    var description: String {
        ["a stop field", "a boolean", "a boolean", "a byte", "an i16", "an i32", "an i64", "a double", "a string", "a list",
         "a set", "a map", "a struct"][Int(rawValue)]
    }
}

/// A reader of Thrift compact-protocol structs (the encoding of Parquet's footer and page headers) over bytes in
/// memory. Every defect — a value running past the end, an unknown type, nesting deeper than any Parquet struct —
/// is a `UserError` "`what`: reason".
struct ThriftReader {
    private let bytes: UnsafeRawBufferPointer
    /// The next byte to read, from the start of `bytes`.
    private(set) var position: Int
    private let what: String
    private var depth = 0
    /// Parquet's structs nest 6 deep (FileMetaData → RowGroup → ColumnChunk → ColumnMetaData → Statistics ...);
    /// a little room beyond that, and no stack overflow from a file that nests lists forever.
    private static let maximumDepth = 16

    /// Reads from `bytes[position...]`; `what` names the bytes in errors ("PATH: footer").
    init(_ bytes: UnsafeRawBufferPointer, at position: Int = 0, what: String) {
        self.bytes = bytes
        self.position = position
        self.what = what
    }

    func corrupt(_ reason: String) -> UserError { UserError("\(what): \(reason)") }

    private mutating func byte() throws -> UInt8 {
        guard position < bytes.count else { throw corrupt("ends early (truncated at byte \(position))") }
        defer { position += 1 }
        return bytes[position]
    }

    /// An unsigned LEB128 varint of at most 10 bytes.
    mutating func varint() throws -> UInt64 {
        var value: UInt64 = 0
        for shift in stride(from: 0, to: 70, by: 7) {
            let next = try byte()
            value |= UInt64(next & 0x7F) << UInt64(shift)
            if next & 0x80 == 0 { return value }
        }
        throw corrupt("a varint longer than 10 bytes")
    }

    private mutating func zigzag() throws -> Int64 {
        let raw = try varint()
        return Int64(bitPattern: raw >> 1) ^ -Int64(bitPattern: raw & 1)
    }

    /// An integer field of type byte, i16, i32 or i64 that must fit an `Int` (any width: writers differ).
    mutating func integer(_ type: ThriftType) throws -> Int {
        switch type {
        case .byte: return Int(Int8(bitPattern: try byte()))
        case .int16, .int32, .int64: return Int(try zigzag())
        default: throw corrupt("expected an integer, found \(type)")
        }
    }

    /// A boolean field: its value is the field type itself (in a struct) or one byte (in a list).
    mutating func boolean(_ type: ThriftType, inList: Bool = false) throws -> Bool {
        if inList { return try byte() == 1 }
        switch type {
        case .booleanTrue: return true
        case .booleanFalse: return false
        default: throw corrupt("expected a boolean, found \(type)")
        }
    }

    /// A binary or string field: its bytes, which must lie inside the buffer.
    mutating func binary(_ type: ThriftType) throws -> UnsafeRawBufferPointer {
        guard type == .binary else { throw corrupt("expected a string, found \(type)") }
        let length = try varint()
        guard length <= UInt64(bytes.count - position) else {
            throw corrupt("a string of \(length) bytes runs past the end (truncated?)")
        }
        defer { position += Int(length) }
        return UnsafeRawBufferPointer(rebasing: bytes[position..<(position + Int(length))])
    }

    /// A string field as UTF-8 text (invalid sequences replaced).
    mutating func string(_ type: ThriftType) throws -> String {
        String(decoding: try binary(type), as: UTF8.self)
    }

    private mutating func type(_ nibble: UInt8) throws -> ThriftType {
        guard let type = ThriftType(rawValue: nibble) else { throw corrupt("unknown Thrift type \(nibble) at byte \(position - 1)") }
        return type
    }

    /// Reads a list field, calling `element` once per element (which must read it, e.g. with `integer`).
    mutating func list(_ type: ThriftType, _ element: (inout ThriftReader, ThriftType) throws -> Void) throws {
        guard type == .list || type == .set else { throw corrupt("expected a list, found \(type)") }
        let header = try byte()
        var count = Int(header >> 4)
        if count == 15 {
            let long = try varint()
            // Every element takes at least one byte, so a longer list cannot be in the buffer.
            guard long <= UInt64(bytes.count - position) else { throw corrupt("a list of \(long) elements runs past the end") }
            count = Int(long)
        }
        let elementType = try self.type(header & 0x0F)
        try nest {
            for _ in 0..<count { try element(&$0, elementType) }
        }
    }

    /// Reads a struct, calling `field` with each field's id and type (it must read the value, or call `skip`).
    mutating func structure(_ field: (inout ThriftReader, Int, ThriftType) throws -> Void) throws {
        try nest {
            var last = 0
            while true {
                let header = try $0.byte()
                if header == 0 { return }
                let type = try $0.type(header & 0x0F)
                let delta = Int(header >> 4)
                let id = delta == 0 ? Int(try $0.zigzag()) : last + delta
                last = id
                try field(&$0, id, type)
            }
        }
    }

    /// A struct given as a field of `type` (which must be a struct).
    mutating func structure(_ type: ThriftType, _ field: (inout ThriftReader, Int, ThriftType) throws -> Void) throws {
        guard type == .structure else { throw corrupt("expected a struct, found \(type)") }
        try structure(field)
    }

    /// Skips one value of `type` (a field this reader does not use).
    mutating func skip(_ type: ThriftType) throws {
        switch type {
        case .booleanTrue, .booleanFalse: return
        case .byte: _ = try byte()
        case .int16, .int32, .int64: _ = try varint()
        case .double:
            guard bytes.count - position >= 8 else { throw corrupt("ends early (truncated at byte \(position))") }
            position += 8
        case .binary: _ = try binary(type)
        case .list, .set: try list(type) { reader, element in try reader.skip(element, inList: true) }
        case .map:
            let count = try varint()
            guard count <= UInt64(bytes.count - position) else { throw corrupt("a map of \(count) entries runs past the end") }
            guard count > 0 else { return }
            let types = try byte()
            let key = try self.type(types >> 4), value = try self.type(types & 0x0F)
            try nest {
                for _ in 0..<Int(count) {
                    try $0.skip(key, inList: true)
                    try $0.skip(value, inList: true)
                }
            }
        case .structure: try structure { reader, _, field in try reader.skip(field) }
        case .stop: throw corrupt("unexpected stop field at byte \(position)")
        }
    }

    /// Skips a list, set or map element: a boolean element is one byte there.
    private mutating func skip(_ type: ThriftType, inList: Bool) throws {
        if inList && (type == .booleanTrue || type == .booleanFalse) {
            _ = try byte()
        } else {
            try skip(type)
        }
    }

    private mutating func nest(_ body: (inout ThriftReader) throws -> Void) throws {
        guard depth < Self.maximumDepth else { throw corrupt("values nested more than \(Self.maximumDepth) deep") }
        depth += 1
        defer { depth -= 1 }
        try body(&self)
    }
}
