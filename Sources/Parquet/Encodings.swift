import Support

/// A position in a page's bytes; reading past the end is a `UserError` "`what`: ...".
struct ByteCursor {
    let bytes: UnsafeRawBufferPointer
    var position = 0
    /// The next bit of `bytes[position]` (bit-packed booleans only).
    var bit = 0
    let what: String

    init(_ bytes: UnsafeRawBufferPointer, what: String) {
        self.bytes = bytes
        self.what = what
    }

    var remaining: Int { bytes.count - position }

    func corrupt(_ reason: String) -> UserError { UserError("\(what): \(reason)") }

    /// Moves on `count` bytes, which must be there.
    mutating func advance(_ count: Int) throws {
        guard count >= 0, count <= remaining else {
            throw corrupt("needs \(count) more bytes at byte \(position), the page has \(remaining) (truncated or corrupt)")
        }
        position += count
    }

    /// The next `count` bytes.
    mutating func take(_ count: Int) throws -> UnsafeRawBufferPointer {
        let start = position
        try advance(count)
        return UnsafeRawBufferPointer(rebasing: bytes[start..<position])
    }

    /// A 4-byte little-endian length (PLAIN byte arrays, the length before v1 levels).
    mutating func length() throws -> Int {
        let raw = try take(4)
        return Int(UInt32(littleEndian: raw.loadUnaligned(as: UInt32.self)))
    }
}

/// The first value and the header's byte of each run of a `HybridDecoder`'s data.
struct RunStarts {
    var values: [Int] = [], positions: [Int] = []
}

/// The RLE / bit-packing hybrid (definition levels, dictionary indices, RLE booleans), decoded one value at a time:
/// runs of one repeated value, or groups of 8 values packed `bitWidth` bits each, least significant bit first.
struct HybridDecoder {
    private let bytes: UnsafeRawBufferPointer
    private var position = 0
    private let bitWidth: Int
    private let what: String
    private var runLeft = 0
    private var repeated: UInt32?
    /// The bit where the current packed run's next value starts.
    private var packedBit = 0

    /// Decodes `bytes` (exactly the encoded data, no length prefix) with values of `bitWidth` bits (0 to 32).
    init(_ bytes: UnsafeRawBufferPointer, bitWidth: Int, what: String) throws {
        guard (0...32).contains(bitWidth) else { throw UserError("\(what): a bit width of \(bitWidth) (at most 32)") }
        self.bytes = bytes
        self.bitWidth = bitWidth
        self.what = what
    }

    private func corrupt(_ reason: String) -> UserError { UserError("\(what): \(reason)") }

    /// The next value; running out of runs is a `UserError`.
    mutating func next() throws -> UInt32 {
        while runLeft == 0 { try startRun() }
        runLeft -= 1
        if let repeated { return repeated }
        guard bitWidth > 0 else { return 0 }
        let firstByte = packedBit >> 3, shift = packedBit & 7
        let lastByte = (packedBit + bitWidth - 1) >> 3
        guard lastByte < bytes.count else { throw corrupt("bit-packed values run past the end of the data (truncated)") }
        var word: UInt64 = 0
        for index in firstByte...lastByte { word |= UInt64(bytes[index]) << UInt64(8 * (index - firstByte)) }
        packedBit += bitWidth
        return UInt32(truncatingIfNeeded: (word >> UInt64(shift)) & ((1 << UInt64(bitWidth)) - 1))
    }

    /// Skips `count` values (a run at once).
    mutating func skip(_ count: Int) throws {
        var left = count
        while left > 0 {
            while runLeft == 0 { try startRun() }
            let taken = min(left, runLeft)
            if repeated == nil {
                // Only moved past here; `next` checks the bits it reads lie in the data.
                let (bits, overflow) = taken.multipliedReportingOverflow(by: bitWidth)
                guard !overflow, bits <= 8 * bytes.count - packedBit else {
                    throw corrupt("bit-packed values run past the end of the data (truncated)")
                }
                packedBit += bits
            }
            (runLeft, left) = (runLeft - taken, left - taken)
        }
    }

    /// Where every eighth run starts (its first value's index and its header's byte; a skip reads at most seven
    /// headers more, and a page's starts take an eighth of the memory), up to the data's end or the first run that
    /// is corrupt (which a read reaching it reports): what `skip(_:from:)` starts from.
    func runStarts() -> RunStarts {
        var walker = self, starts = RunStarts(), values = 0, runs = 0
        while walker.position < bytes.count {
            if runs % 8 == 0 {
                starts.values.append(values)
                starts.positions.append(walker.position)
            }
            guard (try? walker.startRun()) != nil else { break }
            values += walker.runLeft
            runs += 1
        }
        return starts
    }

    /// Skips `count` values of a decoder that has read none, from the last run that starts at or before them.
    mutating func skip(_ count: Int, from starts: RunStarts) throws {
        precondition(position == 0 && runLeft == 0, "HybridDecoder.skip(_:from:) after reading")
        var low = 0, high = starts.values.count
        while high - low > 1 {
            let middle = (low + high) / 2
            if starts.values[middle] <= count { low = middle } else { high = middle }
        }
        if low < starts.values.count {
            position = starts.positions[low]
            try skip(count - starts.values[low])
        } else {
            try skip(count)
        }
    }

    /// Skips `count` values and returns how many of them equal `value` (a repeated run is skipped at once).
    mutating func skip(_ count: Int, counting value: UInt32) throws -> Int {
        var left = count, matches = 0
        while left > 0 {
            while runLeft == 0 { try startRun() }
            if let repeated {
                let taken = min(left, runLeft)
                (runLeft, left) = (runLeft - taken, left - taken)
                if repeated == value { matches += taken }
            } else {
                if try next() == value { matches += 1 }
                left -= 1
            }
        }
        return matches
    }

    private mutating func startRun() throws {
        var header: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < bytes.count else { throw corrupt("the encoded values end early (truncated or corrupt)") }
            let byte = bytes[position]
            position += 1
            guard shift < 64 else { throw corrupt("a run header longer than 10 bytes") }
            header |= UInt64(byte & 0x7F) << shift
            shift += 7
            if byte & 0x80 == 0 { break }
        }
        let count = Int(header >> 1)
        if header & 1 == 0 {
            let width = (bitWidth + 7) / 8
            guard bytes.count - position >= width else { throw corrupt("a repeated value runs past the end (truncated)") }
            var value: UInt32 = 0
            for index in 0..<width { value |= UInt32(bytes[position + index]) << UInt32(8 * index) }
            position += width
            guard bitWidth == 32 || value >> UInt32(bitWidth) == 0 else {
                throw corrupt("a repeated value \(value) wider than \(bitWidth) bits")
            }
            repeated = value
            runLeft = count
        } else {
            // `count` groups of 8 values take `count × bitWidth` bytes; the next run starts after them.
            let (values, overflow) = count.multipliedReportingOverflow(by: 8)
            let (runBytes, tooMany) = count.multipliedReportingOverflow(by: bitWidth)
            guard !overflow, !tooMany else { throw corrupt("a bit-packed run of \(count) groups") }
            repeated = nil
            runLeft = values
            packedBit = position * 8
            position = runBytes > bytes.count - position ? bytes.count + 1 : position + runBytes
        }
    }
}

/// The values of one column as they are decoded, one storage type per physical type.
protocol ValueStorage {
    init()
    var count: Int { get }
    mutating func reserveCapacity(_ count: Int)
    /// A null's slot: 0, false or an empty byte array.
    mutating func appendNull()
    /// Entry `index` of a dictionary page's values.
    mutating func append(from dictionary: Self, at index: Int)
    /// One PLAIN-encoded value from `cursor`.
    mutating func appendPlain(_ cursor: inout ByteCursor) throws
    /// `count` PLAIN-encoded values from `cursor` (a dictionary page's).
    mutating func appendPlain(_ cursor: inout ByteCursor, count: Int) throws
    /// Skips `count` PLAIN-encoded values.
    static func skipPlain(_ cursor: inout ByteCursor, count: Int) throws
    /// One value of an RLE-encoded boolean page (only booleans are stored that way).
    mutating func appendRun(_ value: UInt32, _ cursor: ByteCursor) throws
    /// Bytes of each PLAIN value when all have one size (nil: byte arrays and booleans).
    static var plainWidth: Int? { get }
    /// Value `index` of the PLAIN values `raw`, `plainWidth` bytes each (only for a `plainWidth`).
    mutating func appendPlain(at index: Int, of raw: UnsafeRawBufferPointer)
}

extension ValueStorage {
    mutating func appendPlain(_ cursor: inout ByteCursor, count: Int) throws {
        for _ in 0..<count { try appendPlain(&cursor) }
    }

    mutating func appendRun(_ value: UInt32, _ cursor: ByteCursor) throws {
        throw cursor.corrupt("RLE encoding is for booleans only")
    }

    static var plainWidth: Int? { nil }

    mutating func appendPlain(at index: Int, of raw: UnsafeRawBufferPointer) {
        preconditionFailure("\(Self.self) has no fixed PLAIN width")
    }
}

/// A fixed-width little-endian number as PLAIN stores it.
protocol FixedWidthValue {
    static var zero: Self { get }
    static func load(_ raw: UnsafeRawBufferPointer) -> Self
}

extension Int32: FixedWidthValue {
    static func load(_ raw: UnsafeRawBufferPointer) -> Int32 { Int32(littleEndian: raw.loadUnaligned(as: Int32.self)) }
}

extension Int64: FixedWidthValue {
    static func load(_ raw: UnsafeRawBufferPointer) -> Int64 { Int64(littleEndian: raw.loadUnaligned(as: Int64.self)) }
}

extension Float: FixedWidthValue {
    static func load(_ raw: UnsafeRawBufferPointer) -> Float { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(as: UInt32.self))) }
}

extension Double: FixedWidthValue {
    static func load(_ raw: UnsafeRawBufferPointer) -> Double {
        Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(as: UInt64.self)))
    }
}

extension Array: ValueStorage where Element: FixedWidthValue {
    static var plainWidth: Int? { MemoryLayout<Element>.size }
    mutating func appendPlain(at index: Int, of raw: UnsafeRawBufferPointer) {
        let size = MemoryLayout<Element>.size
        append(Element.load(UnsafeRawBufferPointer(rebasing: raw[(index * size)..<((index + 1) * size)])))
    }
    mutating func appendNull() { append(.zero) }
    mutating func append(from dictionary: [Element], at index: Int) { append(dictionary[index]) }
    mutating func appendPlain(_ cursor: inout ByteCursor) throws {
        append(Element.load(try cursor.take(MemoryLayout<Element>.size)))
    }
    mutating func appendPlain(_ cursor: inout ByteCursor, count: Int) throws {
        let size = MemoryLayout<Element>.size
        let (bytes, overflow) = count.multipliedReportingOverflow(by: size)
        guard !overflow else { throw cursor.corrupt("\(count) values do not fit the page") }
        let raw = try cursor.take(bytes)
        #if _endian(little)
        // PLAIN's little-endian values are this host's: one copy (the bytes may be unaligned).
        let start = self.count
        append(contentsOf: repeatElement(Element.zero, count: count))
        withUnsafeMutableBytes { $0.baseAddress!.advanced(by: start * size).copyMemory(from: raw.baseAddress!, byteCount: bytes) }
        #else
        reserveCapacity(self.count + count)
        for index in 0..<count { append(Element.load(UnsafeRawBufferPointer(rebasing: raw[(index * size)..<((index + 1) * size)]))) }
        #endif
    }
    static func skipPlain(_ cursor: inout ByteCursor, count: Int) throws {
        let (bytes, overflow) = count.multipliedReportingOverflow(by: MemoryLayout<Element>.size)
        guard !overflow else { throw cursor.corrupt("\(count) values do not fit the page") }
        try cursor.advance(bytes)
    }
}

/// Booleans: PLAIN packs them 8 to a byte, least significant bit first; RLE stores them as runs.
struct BooleanStorage: ValueStorage {
    var values: [Bool] = []
    var count: Int { values.count }
    mutating func reserveCapacity(_ count: Int) { values.reserveCapacity(count) }
    mutating func appendNull() { values.append(false) }
    mutating func append(from dictionary: BooleanStorage, at index: Int) { values.append(dictionary.values[index]) }
    mutating func appendPlain(_ cursor: inout ByteCursor) throws {
        guard cursor.position < cursor.bytes.count else { throw cursor.corrupt("the boolean values end early (truncated)") }
        values.append(cursor.bytes[cursor.position] >> UInt8(cursor.bit) & 1 == 1)
        cursor.bit += 1
        if cursor.bit == 8 {
            cursor.bit = 0
            cursor.position += 1
        }
    }
    static func skipPlain(_ cursor: inout ByteCursor, count: Int) throws {
        let bit = cursor.bit + count
        try cursor.advance(bit / 8)
        cursor.bit = bit % 8
        if cursor.bit > 0, cursor.remaining == 0 { throw cursor.corrupt("the boolean values end early (truncated)") }
    }
    mutating func appendRun(_ value: UInt32, _ cursor: ByteCursor) throws {
        guard value <= 1 else { throw cursor.corrupt("a boolean of value \(value)") }
        values.append(value == 1)
    }
}

/// Variable-length byte strings (BYTE_ARRAY): all bytes in one buffer, value i at `offsets[i]..<offsets[i + 1]`.
struct ParquetByteArrays: ValueStorage {
    /// Where each value starts in `bytes`, plus the end of the last one.
    private(set) var offsets: [Int] = [0]
    /// Every value's bytes, one after the other.
    private(set) var bytes: [UInt8] = []

    /// The number of values.
    var count: Int { offsets.count - 1 }
    mutating func reserveCapacity(_ count: Int) { offsets.reserveCapacity(count + 1) }

    /// Value `index` as text (UTF-8; invalid sequences replaced).
    func string(at index: Int) -> String {
        String(decoding: bytes[offsets[index]..<offsets[index + 1]], as: UTF8.self)
    }

    mutating func appendNull() { offsets.append(bytes.count) }
    mutating func append(from dictionary: ParquetByteArrays, at index: Int) {
        bytes.append(contentsOf: dictionary.bytes[dictionary.offsets[index]..<dictionary.offsets[index + 1]])
        offsets.append(bytes.count)
    }
    mutating func appendPlain(_ cursor: inout ByteCursor) throws {
        let length = try cursor.length()
        bytes.append(contentsOf: try cursor.take(length))
        offsets.append(bytes.count)
    }
    static func skipPlain(_ cursor: inout ByteCursor, count: Int) throws {
        for _ in 0..<count { try cursor.advance(try cursor.length()) }
    }
}
