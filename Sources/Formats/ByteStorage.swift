#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Support

/// The bytes of a whole file, mapped read-only from disk (or, for tests and fuzzing, copied from memory), kept
/// alive as long as any `ByteStorage` or reader uses them.
public final class FileBytes {
    /// The file's bytes (valid while this object lives).
    public let buffer: UnsafeRawBufferPointer
    private let mapped: Bool

    /// Maps `path` read-only; a missing, unreadable or empty file is a `UserError` naming the path.
    public init(mapping path: String) throws {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        if descriptor < 0 { throw UserError("\(path): \(FileIO.describeOpenFailure(errno))") }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw UserError("\(path): cannot read: \(FileIO.errorText(errno))") }
        if (status.st_mode & S_IFMT) == S_IFDIR { throw UserError("\(path): is a directory, expected a file") }
        guard (status.st_mode & S_IFMT) == S_IFREG else { throw UserError("\(path): not a regular file") }
        let size = Int(status.st_size)
        guard size > 0 else { throw UserError("\(path): empty file") }
        guard let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0), address != MAP_FAILED else {
            throw UserError("\(path): cannot map the file into memory: \(FileIO.errorText(errno))")
        }
        buffer = UnsafeRawBufferPointer(start: address, count: size)
        mapped = true
    }

    /// A private copy of `bytes` (what a file would hold).
    init(copying bytes: [UInt8]) {
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
        bytes.withUnsafeBytes { storage.copyMemory(from: $0) }
        buffer = UnsafeRawBufferPointer(start: storage.baseAddress, count: bytes.count)
        mapped = false
    }

    /// Asks the kernel to start reading bytes `range` of a mapped file from disk now, so that they are in memory
    /// when read (nothing for a copy in memory).
    public func willRead(_ range: Range<Int>) { advise(range, MADV_WILLNEED) }

    /// Tells the kernel that a mapped file is read at random: a page fault reads its page, not the pages around it.
    public func expectRandomReads() { advise(0..<buffer.count, MADV_RANDOM) }

    private func advise(_ range: Range<Int>, _ advice: Int32) {
        guard mapped, !range.isEmpty, let base = buffer.baseAddress else { return }
        // madvise takes a page-aligned start; the mapping itself starts at a page.
        let start = range.lowerBound / FileBytes.pageSize * FileBytes.pageSize
        _ = madvise(UnsafeMutableRawPointer(mutating: base + start), range.upperBound - start, advice)
    }

    private static let pageSize = max(1, sysconf(Int32(_SC_PAGESIZE)))

    deinit {
        if mapped {
            munmap(UnsafeMutableRawPointer(mutating: buffer.baseAddress), buffer.count)
        } else {
            buffer.baseAddress.map { UnsafeMutableRawPointer(mutating: $0).deallocate() }
        }
    }
}

/// Bytes a dataset keeps as stored: read into an array (IDX), or a range of a mapped file (an npz's uncompressed
/// uint8 array), so the features need no second copy in memory.
public struct ByteStorage: RandomAccessCollection {
    private enum Backing {
        case array([UInt8])
        case file(FileBytes, offset: Int)
    }
    private let backing: Backing
    /// The number of bytes (indices are 0..<endIndex).
    public let endIndex: Int
    /// Always 0.
    public var startIndex: Int { 0 }

    /// Bytes held in an array.
    public init(_ bytes: [UInt8]) {
        backing = .array(bytes)
        endIndex = bytes.count
    }

    /// `count` bytes of `file` from `offset` (which must lie inside it), without copying.
    public init(file: FileBytes, offset: Int, count: Int) {
        precondition(offset >= 0 && count >= 0 && offset <= file.buffer.count - count, "ByteStorage: range outside the file")
        backing = .file(file, offset: offset)
        endIndex = count
    }

    private init(backing: Backing, count: Int) {
        self.backing = backing
        endIndex = count
    }

    /// The byte at `position` (for tests and checks; hot loops use `withUnsafeBufferPointer`).
    public subscript(position: Int) -> UInt8 {
        precondition(position >= 0 && position < endIndex, "ByteStorage: index \(position) outside 0..<\(endIndex)")
        return withUnsafeBufferPointer { $0[position] }
    }

    /// Calls `body` with the bytes in place (valid during the call only).
    public func withUnsafeBufferPointer<Result>(_ body: (UnsafeBufferPointer<UInt8>) throws -> Result) rethrows -> Result {
        switch backing {
        case let .array(bytes):
            return try bytes.withUnsafeBufferPointer { try body(UnsafeBufferPointer(rebasing: $0[0..<endIndex])) }
        case let .file(file, offset):
            let start = file.buffer.baseAddress.map { $0.assumingMemoryBound(to: UInt8.self) + offset }
            return try body(UnsafeBufferPointer(start: start, count: endIndex))
        }
    }

    /// The first `count` bytes, sharing this storage.
    public func truncated(to count: Int) -> ByteStorage {
        ByteStorage(backing: backing, count: Swift.min(Swift.max(count, 0), endIndex))
    }

    /// Whether the bytes are a range of a file rather than an array of their own.
    var isFileBacked: Bool {
        if case .file = backing { return true }
        return false
    }
}
