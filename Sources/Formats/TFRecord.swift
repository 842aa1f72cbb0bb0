// TensorBoard reads event files as TFRecords of serialized protocol buffers. Both layers are small enough to write by
// hand: the framing is four fields, and the run writes five message types (Event, Summary, Summary.Value,
// HistogramProto, the text plugin's tensor), so the project needs no protobuf runtime or generated code.

/// CRC-32C (Castagnoli), the checksum of TFRecord framing, with TensorFlow's masking.
enum CRC32C {
    private static let table: [UInt32] = (0..<256).map { index in
        var crc = UInt32(index)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        return crc
    }

    /// The CRC-32C of `bytes` (of "123456789": 0xE3069283).
    static func checksum<Bytes: Collection>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return ~crc
    }

    /// TensorFlow's masked form (rotated and offset, so a CRC of data that holds CRCs stays well distributed).
    static func masked<Bytes: Collection>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        let crc = checksum(bytes)
        return ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }
}

/// TFRecord framing: per record a little-endian UInt64 length, the masked CRC-32C of those 8 bytes, the data, and the
/// masked CRC-32C of the data.
public enum TFRecord {
    /// Appends `data` as one framed record to `output`.
    public static func append(_ data: [UInt8], to output: inout [UInt8]) {
        let length = littleEndianBytes(UInt64(data.count))
        output += length
        output += littleEndianBytes(CRC32C.masked(length))
        output += data
        output += littleEndianBytes(CRC32C.masked(data))
    }

    /// The records of `bytes` in order, up to the first that is cut short or fails a checksum (a torn tail);
    /// `intact` is false when such a tail was dropped.
    public static func records(in bytes: [UInt8]) -> (records: [ArraySlice<UInt8>], intact: Bool) {
        var records: [ArraySlice<UInt8>] = []
        var offset = 0
        while offset < bytes.count {
            guard bytes.count - offset >= 12 else { return (records, false) }
            let lengthBytes = bytes[offset..<(offset + 8)]
            guard readLittleEndian(bytes, at: offset + 8, as: UInt32.self) == CRC32C.masked(lengthBytes) else {
                return (records, false)
            }
            let length = readLittleEndian(bytes, at: offset, as: UInt64.self)
            let start = offset + 12
            guard length <= UInt64(bytes.count - start), bytes.count - start - Int(length) >= 4 else { return (records, false) }
            let end = start + Int(length)
            guard readLittleEndian(bytes, at: end, as: UInt32.self) == CRC32C.masked(bytes[start..<end]) else {
                return (records, false)
            }
            records.append(bytes[start..<end])
            offset = end + 4
        }
        return (records, true)
    }
}
