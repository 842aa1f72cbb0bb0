/// The little-endian bytes of an integer.
func littleEndianBytes<Value: FixedWidthInteger>(_ value: Value) -> [UInt8] {
    (0..<(Value.bitWidth / 8)).map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
}

/// The integer stored little-endian at `offset` of `bytes` (which must hold it).
func readLittleEndian<Value: FixedWidthInteger, Bytes: RandomAccessCollection>(_ bytes: Bytes, at offset: Int,
                                                                             as type: Value.Type) -> Value
    where Bytes.Element == UInt8, Bytes.Index == Int {
    var value: Value = 0
    for index in 0..<(Value.bitWidth / 8) { value |= Value(bytes[offset + index]) << (index * 8) }
    return value
}

/// Protocol-buffer wire format, writing side: fields appended in the order given (what proto3 readers accept).
public struct ProtobufWriter {
    /// An empty message.
    public init() {}

    public private(set) var bytes: [UInt8] = []

    private enum WireType: UInt64 { case varint = 0, fixed64 = 1, lengthDelimited = 2, fixed32 = 5 }

    private mutating func key(_ field: Int, _ type: WireType) { appendVarint(UInt64(field) << 3 | type.rawValue) }

    private mutating func appendVarint(_ value: UInt64) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }

    /// An int64/uint64/enum/bool field.
    public mutating func varint(_ field: Int, _ value: Int64) {
        key(field, .varint)
        appendVarint(UInt64(bitPattern: value))
    }

    public mutating func double(_ field: Int, _ value: Double) {
        key(field, .fixed64)
        bytes += littleEndianBytes(value.bitPattern)
    }

    public mutating func float(_ field: Int, _ value: Float) {
        key(field, .fixed32)
        bytes += littleEndianBytes(value.bitPattern)
    }

    /// A bytes, string or embedded-message field.
    mutating func lengthDelimited(_ field: Int, _ value: [UInt8]) {
        key(field, .lengthDelimited)
        appendVarint(UInt64(value.count))
        bytes += value
    }

    public mutating func string(_ field: Int, _ value: String) { lengthDelimited(field, Array(value.utf8)) }

    /// An embedded message built by `body`.
    public mutating func message(_ field: Int, _ body: (inout ProtobufWriter) -> Void) {
        var nested = ProtobufWriter()
        body(&nested)
        lengthDelimited(field, nested.bytes)
    }

    /// A packed repeated double field.
    public mutating func packedDoubles(_ field: Int, _ values: [Double]) {
        lengthDelimited(field, values.flatMap { littleEndianBytes($0.bitPattern) })
    }

    /// A packed repeated float field.
    public mutating func packedFloats(_ field: Int, _ values: [Float]) {
        lengthDelimited(field, values.flatMap { littleEndianBytes($0.bitPattern) })
    }

    /// A packed repeated int64 field.
    public mutating func packedVarints(_ field: Int, _ values: [Int64]) {
        var packed = ProtobufWriter()
        for value in values { packed.appendVarint(UInt64(bitPattern: value)) }
        lengthDelimited(field, packed.bytes)
    }
}

/// Protocol-buffer wire format, reading side: the fields of one message in order (enough to find a field by number).
public struct ProtobufReader {
    /// One field as read: varints and fixed-width values as integers, length-delimited ones as their bytes.
    public enum Value {
        case integer(UInt64)
        case bytes(ArraySlice<UInt8>)
    }

    /// The fields of `message`, or nil if it is not well-formed wire format.
    public static func fields(of message: ArraySlice<UInt8>) -> [(field: Int, value: Value)]? {
        var fields: [(field: Int, value: Value)] = []
        var offset = message.startIndex
        func varint() -> UInt64? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while offset < message.endIndex, shift < 64 {
                let byte = message[offset]
                offset += 1
                value |= UInt64(byte & 0x7F) << shift
                if byte < 0x80 { return value }
                shift += 7
            }
            return nil
        }
        while offset < message.endIndex {
            guard let key = varint(), key >> 3 > 0 else { return nil }
            let field = Int(truncatingIfNeeded: key >> 3)
            switch key & 7 {
            case 0:
                guard let value = varint() else { return nil }
                fields.append((field, .integer(value)))
            case 1, 5:
                let width = key & 7 == 1 ? 8 : 4
                guard message.endIndex - offset >= width else { return nil }
                let value: UInt64 = width == 8 ? readLittleEndian(message, at: offset, as: UInt64.self)
                    : UInt64(readLittleEndian(message, at: offset, as: UInt32.self))
                offset += width
                fields.append((field, .integer(value)))
            case 2:
                guard let length = varint(), length <= UInt64(message.endIndex - offset) else { return nil }
                fields.append((field, .bytes(message[offset..<(offset + Int(length))])))
                offset += Int(length)
            default:
                return nil
            }
        }
        return fields
    }
}
