import Support

/// Snappy's block format (what Parquet's SNAPPY codec stores, without the framing format): a varint of the
/// uncompressed length, then literals and back-references. Decoded here from the format's public description.
enum Snappy {
    /// The uncompressed length a block declares, and where its elements start.
    static func declaredLength(_ input: UnsafeRawBufferPointer) -> (length: Int, start: Int)? {
        var value = 0, position = 0
        for shift in stride(from: 0, to: 35, by: 7) {
            guard position < input.count else { return nil }
            let byte = input[position]
            position += 1
            value |= Int(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value <= Int(UInt32.max) ? (value, position) : nil }
        }
        return nil
    }

    /// Decompresses a block into exactly `output` (whose size the page header gives); any defect — a length that
    /// disagrees, a copy reaching before the start or past the end, input that ends early — is a `UserError`
    /// "`what`: corrupt Snappy data (reason)".
    static func decompress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, what: String) throws {
        func corrupt(_ reason: String) -> UserError { UserError("\(what): corrupt Snappy data (\(reason))") }
        guard let (length, start) = declaredLength(input) else { throw corrupt("no valid length at the start") }
        guard length == output.count else {
            throw corrupt("the block holds \(length) bytes, the page header says \(output.count)")
        }
        guard length > 0, let destination = output.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
            guard start == input.count else { throw corrupt("data after an empty block") }
            return
        }
        var position = start, written = 0
        /// `count` bytes (1 to 4) of little-endian integer at `position`.
        func littleEndian(_ count: Int) throws -> Int {
            guard input.count - position >= count else { throw corrupt("ends early at byte \(position)") }
            var value = 0
            for index in 0..<count { value |= Int(input[position + index]) << (8 * index) }
            position += count
            return value
        }
        /// A back-reference: `count` bytes from `offset` bytes back (overlapping copies repeat the pattern).
        func copy(_ count: Int, _ offset: Int) throws {
            guard offset > 0, offset <= written else { throw corrupt("a copy from \(offset) bytes back, \(written) written") }
            guard count <= length - written else { throw corrupt("a copy runs past the end of the block") }
            for index in written..<(written + count) { destination[index] = destination[index - offset] }
            written += count
        }
        while position < input.count {
            let tag = input[position]
            position += 1
            switch tag & 3 {
            case 0:                                                  // literal
                var literal = Int(tag >> 2) + 1
                if literal > 60 { literal = try littleEndian(literal - 60) + 1 }
                guard literal <= input.count - position, literal <= length - written else {
                    throw corrupt("a literal of \(literal) bytes runs past the end")
                }
                (destination + written).initialize(from: input.baseAddress!.assumingMemoryBound(to: UInt8.self) + position,
                                                   count: literal)
                position += literal
                written += literal
            case 1:                                                  // copy, 11-bit offset
                let count = Int((tag >> 2) & 7) + 4
                let offset = Int(tag >> 5) << 8 | (try littleEndian(1))
                try copy(count, offset)
            case 2: try copy(Int(tag >> 2) + 1, try littleEndian(2))
            default: try copy(Int(tag >> 2) + 1, try littleEndian(4))
            }
        }
        guard written == length else { throw corrupt("the block ends after \(written) of its \(length) bytes") }
    }
}
