import CZlib
import Support

/// A strict reader of zip archives as `numpy.savez` / `savez_compressed` write them: members stored or deflated,
/// zip64 sizes and offsets, no encryption, no multi-disk archives. The central directory is authoritative; each
/// member's local header must agree with it, its data must lie inside the file, and its CRC-32 must match.
public struct ZipArchive {
    /// One member as the central directory describes it.
    public struct Entry {
        /// The member's path inside the archive.
        public var name: String
        /// 0 stored, 8 deflated.
        var method: UInt16
        /// CRC-32 of the uncompressed bytes.
        var crc: UInt32
        /// Bytes in the file.
        var compressedSize: Int
        /// Bytes once inflated.
        var size: Int
        /// Where the member's data starts in the file (after its local header).
        var dataOffset: Int
    }

    let file: FileBytes
    let path: String
    /// The members in central-directory order.
    public let entries: [Entry]

    /// Zip method numbers this reader inflates.
    static let stored: UInt16 = 0, deflated: UInt16 = 8
    /// Deflate cannot expand data more than about 1032 : 1, so a larger declared size is a corrupt header.
    static let maximumDeflateRatio = 1032

    /// Parses the central directory of `file`; any defect is a `UserError` "PATH: not a zip file: …" or "PATH: corrupt zip: …".
    public init(_ file: FileBytes, path: String) throws {
        self.file = file
        self.path = path
        let bytes = file.buffer
        func corrupt(_ reason: String) -> UserError { UserError("\(path): corrupt zip: \(reason)") }

        // End of central directory: 22 bytes plus a comment of up to 65535 that must end exactly at the end of the file.
        guard bytes.count >= 22 else { throw UserError("\(path): not a zip file (\(bytes.count) bytes)") }
        var end = -1
        var candidate = bytes.count - 22
        while candidate >= max(0, bytes.count - 22 - 0xFFFF) {
            if readUInt32(bytes, candidate) == 0x0605_4b50, candidate + 22 + Int(readUInt16(bytes, candidate + 20)) == bytes.count {
                end = candidate
                break
            }
            candidate -= 1
        }
        guard end >= 0 else {
            let magic = bytes.count >= 4 && readUInt32(bytes, 0) == 0x0403_4b50
            throw magic ? corrupt("no end-of-central-directory record (is the file truncated?)")
                : UserError("\(path): not a zip file (no zip signature; an .npz is written by numpy.savez)")
        }
        var entryCount = Int(readUInt16(bytes, end + 10))
        var directorySize = Int(readUInt32(bytes, end + 12))
        var directoryOffset = Int(readUInt32(bytes, end + 16))
        if readUInt16(bytes, end + 4) != 0 || readUInt16(bytes, end + 6) != 0 && readUInt16(bytes, end + 6) != 0xFFFF {
            throw corrupt("multi-disk archives are not supported")
        }
        if entryCount == 0xFFFF || directorySize == 0xFFFF_FFFF || directoryOffset == 0xFFFF_FFFF {
            // Zip64: a 20-byte locator right before the record points at the zip64 end of central directory.
            let locator = end - 20
            guard locator >= 0, readUInt32(bytes, locator) == 0x0706_4b50 else { throw corrupt("zip64 locator missing") }
            let record = try ZipArchive.offset(readUInt64(bytes, locator + 8), limit: locator - 56, what: "zip64 record", path: path)
            guard readUInt32(bytes, record) == 0x0606_4b50 else { throw corrupt("bad zip64 end-of-central-directory signature") }
            entryCount = try ZipArchive.offset(readUInt64(bytes, record + 32), limit: bytes.count, what: "entry count", path: path)
            directorySize = try ZipArchive.offset(readUInt64(bytes, record + 40), limit: bytes.count, what: "directory size", path: path)
            directoryOffset = try ZipArchive.offset(readUInt64(bytes, record + 48), limit: bytes.count, what: "directory offset", path: path)
        }
        guard directoryOffset <= end, directorySize <= end - directoryOffset else {
            throw corrupt("central directory (\(directorySize) bytes at \(directoryOffset)) lies outside the file")
        }
        guard entryCount <= directorySize / 46 else { throw corrupt("\(entryCount) entries do not fit a \(directorySize)-byte directory") }

        var entries: [Entry] = []
        var names = Set<String>()
        var position = directoryOffset
        let directoryEnd = directoryOffset + directorySize
        for _ in 0..<entryCount {
            guard position + 46 <= directoryEnd, readUInt32(bytes, position) == 0x0201_4b50 else {
                throw corrupt("bad central directory entry at byte \(position)")
            }
            let flags = readUInt16(bytes, position + 8)
            let method = readUInt16(bytes, position + 10)
            let nameLength = Int(readUInt16(bytes, position + 28))
            let extraLength = Int(readUInt16(bytes, position + 30))
            let commentLength = Int(readUInt16(bytes, position + 32))
            let next = position + 46 + nameLength + extraLength + commentLength
            guard next <= directoryEnd else { throw corrupt("central directory entry at byte \(position) runs past the directory") }
            let name = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[(position + 46)..<(position + 46 + nameLength)]),
                              as: UTF8.self)
            let shown = quotedForMessage(name)
            guard flags & 1 == 0 else { throw UserError("\(path): member \(shown) is encrypted") }
            guard method == ZipArchive.stored || method == ZipArchive.deflated else {
                throw UserError("\(path): member \(shown) uses compression method \(method); only stored (0) and deflate (8) are supported")
            }
            var size = UInt64(readUInt32(bytes, position + 24))
            var compressedSize = UInt64(readUInt32(bytes, position + 20))
            var localOffset = UInt64(readUInt32(bytes, position + 42))
            if size == 0xFFFF_FFFF || compressedSize == 0xFFFF_FFFF || localOffset == 0xFFFF_FFFF {
                let extra = UnsafeRawBufferPointer(rebasing: bytes[(position + 46 + nameLength)..<(position + 46 + nameLength + extraLength)])
                guard ZipArchive.readZip64Values(extra, size: &size, compressedSize: &compressedSize, offset: &localOffset) else {
                    throw corrupt("member \(shown) lacks the zip64 sizes its directory entry announces")
                }
            }
            guard names.insert(name).inserted else { throw corrupt("member \(shown) appears twice") }
            let local = try ZipArchive.offset(localOffset, limit: directoryOffset, what: "local header of \(shown)", path: path)
            let compressed = try ZipArchive.offset(compressedSize, limit: bytes.count, what: "compressed size of \(shown)", path: path)
            let declared = try ZipArchive.offset(size, limit: Int.max / 2, what: "size of \(shown)", path: path)
            // The local header: same name and method, followed by the data, which must end before the directory.
            guard local + 30 <= directoryOffset, readUInt32(bytes, local) == 0x0403_4b50 else {
                throw corrupt("member \(shown) has no local header at byte \(local)")
            }
            let localNameLength = Int(readUInt16(bytes, local + 26)), localExtraLength = Int(readUInt16(bytes, local + 28))
            let dataOffset = local + 30 + localNameLength + localExtraLength
            guard readUInt16(bytes, local + 8) == method, localNameLength == nameLength, dataOffset <= directoryOffset,
                  bytes[(local + 30)..<(local + 30 + nameLength)].elementsEqual(bytes[(position + 46)..<(position + 46 + nameLength)]) else {
                throw corrupt("the local header of member \(shown) disagrees with the central directory")
            }
            guard compressed <= directoryOffset - dataOffset else {
                throw corrupt("member \(shown) is truncated (\(compressed) bytes declared, \(directoryOffset - dataOffset) present)")
            }
            if method == ZipArchive.stored && compressed != declared {
                throw corrupt("stored member \(shown) declares \(declared) bytes but holds \(compressed)")
            }
            if method == ZipArchive.deflated && declared / ZipArchive.maximumDeflateRatio > compressed {
                throw corrupt("member \(shown) declares \(declared) bytes, impossible from \(compressed) deflated bytes")
            }
            entries.append(Entry(name: name, method: method, crc: readUInt32(bytes, position + 16), compressedSize: compressed,
                                 size: declared, dataOffset: dataOffset))
            position = next
        }
        self.entries = entries
    }

    /// The member named `name`, if any.
    public func entry(named name: String) -> Entry? { entries.first { $0.name == name } }

    /// Reads the zip64 extended-information extra field: each 32-bit field that was 0xFFFFFFFF is replaced, in order;
    /// false when the field is missing or too short.
    private static func readZip64Values(_ extra: UnsafeRawBufferPointer, size: inout UInt64, compressedSize: inout UInt64,
                                        offset: inout UInt64) -> Bool {
        var position = 0
        while position + 4 <= extra.count {
            let identifier = readUInt16(extra, position), length = Int(readUInt16(extra, position + 2))
            guard position + 4 + length <= extra.count else { return false }
            if identifier == 0x0001 {
                var field = position + 4
                let fieldEnd = field + length
                if size == 0xFFFF_FFFF {
                    guard field + 8 <= fieldEnd else { return false }
                    size = readUInt64(extra, field); field += 8
                }
                if compressedSize == 0xFFFF_FFFF {
                    guard field + 8 <= fieldEnd else { return false }
                    compressedSize = readUInt64(extra, field); field += 8
                }
                if offset == 0xFFFF_FFFF {
                    guard field + 8 <= fieldEnd else { return false }
                    offset = readUInt64(extra, field); field += 8
                }
                return true
            }
            position += 4 + length
        }
        return false
    }

    /// `value` as an Int no larger than `limit`, else a `UserError` naming `what`.
    private static func offset(_ value: UInt64, limit: Int, what: String, path: String) throws -> Int {
        guard limit >= 0, value <= UInt64(limit) else { throw UserError("\(path): corrupt zip: \(what) \(value) is out of range") }
        return Int(value)
    }

    /// Sequential reads of one member's uncompressed bytes, inflating deflated members as they go and checking the
    /// size and CRC-32 at `finish`.
    public final class MemberReader {
        let archive: ZipArchive
        let entry: Entry
        /// Uncompressed bytes handed out so far.
        private(set) var position = 0
        private var crc: UInt = crc32(0, nil, 0)
        /// The member's deflate stream (nil for a stored member).
        private let inflater: Inflater?
        private var ended = false
        /// Compressed bytes handed to zlib so far.
        private var inputOffered = 0

        public init(_ archive: ZipArchive, _ entry: Entry) throws {
            self.archive = archive
            self.entry = entry
            if entry.method == ZipArchive.deflated {
                inflater = try Inflater(.raw, path: archive.path)
                inflater!.start(at: archive.file.buffer.baseAddress!.assumingMemoryBound(to: UInt8.self) + entry.dataOffset,
                                count: 0)
            } else {
                inflater = nil
            }
        }

        /// Bytes of the member not yet read.
        var remaining: Int { entry.size - position }

        private func corrupt(_ reason: String) -> UserError {
            UserError("\(archive.path): member \(quotedForMessage(entry.name)) is corrupt: \(reason)")
        }

        /// Fills `destination` with the next `destination.count` bytes; a member that ends early is a `UserError`.
        public func read(into destination: UnsafeMutableRawBufferPointer) throws {
            guard destination.count > 0 else { return }
            guard destination.count <= remaining else {
                throw corrupt("needs \(position + destination.count) bytes, the member has \(entry.size)")
            }
            let base = destination.baseAddress!.assumingMemoryBound(to: UInt8.self)
            if entry.method == ZipArchive.stored {
                let source = archive.file.buffer.baseAddress! + entry.dataOffset + position
                destination.copyMemory(from: UnsafeRawBufferPointer(start: source, count: destination.count))
            } else {
                try inflate(into: base, count: destination.count)
            }
            updateChecksum(UnsafeRawBufferPointer(destination))
            position += destination.count
        }

        /// For a stored member: the next `count` bytes in place in the file (no copy), consumed and checksummed.
        public func storedBytes(count: Int) throws -> (offset: Int, count: Int)? {
            guard entry.method == ZipArchive.stored else { return nil }
            guard count <= remaining else { throw corrupt("needs \(position + count) bytes, the member has \(entry.size)") }
            let offset = entry.dataOffset + position
            updateChecksum(UnsafeRawBufferPointer(rebasing: archive.file.buffer[offset..<(offset + count)]))
            position += count
            return (offset, count)
        }

        /// Checks every byte was read, the deflate stream ended there with all its input, and the CRC-32 matches.
        public func finish() throws {
            guard remaining == 0 else { throw corrupt("\(remaining) bytes after the data") }
            if inflater != nil, !ended {
                // The stream must end without producing more: inflate into a one-byte probe.
                var probe: UInt8 = 0
                try withUnsafeMutablePointer(to: &probe) { try inflate(into: $0, count: 1, probing: true) }
            }
            if let inflater, inflater.pendingInput != 0 || inputOffered != entry.compressedSize {
                throw corrupt("bytes after the end of the deflate stream")
            }
            guard UInt32(truncatingIfNeeded: crc) == entry.crc else {
                throw corrupt("CRC-32 mismatch (stored \(hex(entry.crc)), computed \(hex(UInt32(truncatingIfNeeded: crc))))")
            }
        }

        private func hex(_ value: UInt32) -> String {
            let digits = String(value, radix: 16)
            return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
        }

        private func updateChecksum(_ bytes: UnsafeRawBufferPointer) {
            var offset = 0
            while offset < bytes.count {
                let chunk = min(bytes.count - offset, 1 << 30)
                crc = crc32(crc, bytes.baseAddress!.assumingMemoryBound(to: UInt8.self) + offset, UInt32(chunk))
                offset += chunk
            }
        }

        /// Inflates exactly `count` bytes into `output` (or, `probing`, checks that the stream ends with none).
        private func inflate(into output: UnsafeMutablePointer<UInt8>, count: Int, probing: Bool = false) throws {
            guard let inflater else { return }
            var produced = 0
            while produced < count {
                if inflater.pendingInput == 0 && inputOffered < entry.compressedSize {
                    let chunk = min(entry.compressedSize - inputOffered, 1 << 30)
                    inflater.offer(chunk)
                    inputOffered += chunk
                }
                let (got, status) = inflater.inflate(into: output + produced, count: min(count - produced, 1 << 30))
                produced += got
                switch status {
                case .streamEnd:
                    ended = true
                    if probing {
                        if got > 0 { throw corrupt("the deflate stream holds more than the \(entry.size) bytes declared") }
                        return
                    }
                    if produced < count { throw corrupt("the deflate stream ends after \(position + produced) of \(entry.size) bytes") }
                case .ok:
                    if probing && got > 0 { throw corrupt("the deflate stream holds more than the \(entry.size) bytes declared") }
                case .noProgress:
                    // No progress with room to write: the input (offered whenever zlib ran out) is exhausted.
                    throw corrupt("the deflate stream is truncated")
                case let .corrupt(detail):
                    throw corrupt("bad deflate data (\(detail))")
                }
            }
        }
    }
}

/// Little-endian integers at a byte offset (the caller checks the bounds).
private func readUInt16(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt16 {
    UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8
}

private func readUInt32(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
    UInt32(readUInt16(bytes, offset)) | UInt32(readUInt16(bytes, offset + 2)) << 16
}

private func readUInt64(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt64 {
    UInt64(readUInt32(bytes, offset)) | UInt64(readUInt32(bytes, offset + 4)) << 32
}
