import Foundation

/// Decompressed pages by file and byte offset, the least recently used dropped beyond `budget` bytes; one cache
/// for every open file (shards share it). A compressed page holds the rows of many slabs (a 1 MiB page of one float
/// column: 262,144 rows), and each slab's read would otherwise decompress it again, the dictionary page too.
///
/// A slab reads a page of each of its columns in turn; where those are more than fit (a wide table), dropping the
/// least recently used page drops the one read next and finds none. So the cache remembers the keys it dropped
/// lately: while most misses are pages it dropped, it keeps what it holds (which goes on being found) and takes one
/// new page in 16. Safe to use from several threads.
final class PageCache: @unchecked Sendable {
    /// A page: its file (`ParquetFile.cacheIdentity`, never reused) and the byte offset of its compressed data.
    struct Key: Hashable {
        let file: Int, offset: Int
    }

    /// The cache of the process: a dictionary and a few data pages of 1 MiB for each of a few dozen columns.
    static let shared = PageCache(budget: 64 << 20)

    /// Bytes of decompressed pages kept at most; a larger page is decompressed for its read and not kept.
    let budget: Int
    private let lock = NSLock()
    private var pages: [Key: (bytes: [UInt8], used: Int)] = [:]
    private var clock = 0, files = 0
    /// Keys dropped lately, oldest first from `ghostStart` (a ring of up to four times the pages held), and as a set.
    private var ghosts: [Key] = [], ghostStart = 0, ghostSet: Set<Key> = []
    /// How many of the recent misses were pages dropped lately (a running mean).
    private var missesOfDropped = 0.0
    /// The run starts of pages' dictionary indices (small: one entry per eight runs of up to hundreds of values each).
    private var runStarts: [Key: RunStarts] = [:]
    /// Bytes of the pages held.
    private(set) var heldBytes = 0
    /// Pages decompressed so far (what a hit saves).
    private(set) var decompressions = 0

    init(budget: Int) { self.budget = budget }

    /// A new file's identity in the cache.
    func identity() -> Int {
        lock.lock()
        defer { lock.unlock() }
        files += 1
        return files
    }

    /// Drops the pages of a file that is closed.
    func drop(file: Int) {
        lock.lock()
        defer { lock.unlock() }
        for (key, page) in pages where key.file == file {
            pages[key] = nil
            heldBytes -= page.bytes.count
        }
        for key in runStarts.keys where key.file == file { runStarts[key] = nil }
    }

    /// The run starts of the dictionary indices of page `key`, held or found by `find` (once per page, so that each
    /// slab skips to its rows from the nearest run instead of reading every run header before them).
    func runStarts(_ key: Key, find: () -> RunStarts) -> RunStarts {
        lock.lock()
        if let held = runStarts[key] {
            lock.unlock()
            return held
        }
        lock.unlock()
        let starts = find()
        lock.lock()
        defer { lock.unlock() }
        // A bound on a process reading many files' pages: start over rather than track use.
        if runStarts.count >= 1 << 16 { runStarts = [:] }
        runStarts[key] = starts
        return starts
    }

    /// The page `key`, held or made by `decompress` (outside the lock: readers of other pages go on).
    func page(_ key: Key, decompress: () throws -> [UInt8]) throws -> [UInt8] {
        lock.lock()
        clock += 1
        if let held = pages[key] {
            pages[key]!.used = clock
            lock.unlock()
            return held.bytes
        }
        lock.unlock()
        let bytes = try decompress()
        lock.lock()
        defer { lock.unlock() }
        decompressions += 1
        missesOfDropped += ((ghostSet.contains(key) ? 1 : 0) - missesOfDropped) / 32
        guard bytes.count <= budget, pages[key] == nil else { return bytes }
        if heldBytes + bytes.count > budget {
            guard missesOfDropped < 0.5 || decompressions % 16 == 0 else { return bytes }
            while heldBytes + bytes.count > budget, let oldest = pages.min(by: { $0.value.used < $1.value.used }) {
                pages[oldest.key] = nil
                heldBytes -= oldest.value.bytes.count
                remember(oldest.key)
            }
        }
        pages[key] = (bytes, clock)
        heldBytes += bytes.count
        return bytes
    }

    /// Adds a dropped key to the ring of ghosts, forgetting the oldest beyond four times the pages held.
    private func remember(_ key: Key) {
        ghosts.append(key)
        ghostSet.insert(key)
        while ghosts.count - ghostStart > 4 * max(pages.count, 1) {
            ghostSet.remove(ghosts[ghostStart])
            ghostStart += 1
        }
        if ghostStart > 4096 && ghostStart * 2 > ghosts.count {
            ghosts.removeFirst(ghostStart)
            ghostStart = 0
        }
    }
}

extension ParquetFile {
    /// The cache's name for the page whose bytes (compressed, as stored) are `data`, a part of this file.
    func cacheKey(of data: UnsafeRawBufferPointer) -> PageCache.Key {
        PageCache.Key(file: cacheIdentity, offset: Int(bitPattern: data.baseAddress) - Int(bitPattern: file.buffer.baseAddress))
    }

    /// `data`, a compressed page of this file, decompressed with `codec` into exactly `size` bytes: from the page
    /// cache, or decompressed and kept there; `what` names the page in errors.
    func decompressedPage(_ data: UnsafeRawBufferPointer, codec: Codec, size: Int, what: String) throws -> [UInt8] {
        try pages.page(cacheKey(of: data)) { try Decompression.decompressed(data, codec: codec, size: size, what: what) }
    }

    /// Calls `body` with the page `data` of this file: as it is when uncompressed (of exactly `size` bytes), else
    /// decompressed through the page cache.
    func withPage<Result>(_ data: UnsafeRawBufferPointer, codec: Codec, size: Int, what: String,
                          _ body: (UnsafeRawBufferPointer) throws -> Result) throws -> Result {
        guard codec != .uncompressed else { return try Decompression.withPage(data, codec: codec, size: size, what: what, body) }
        return try decompressedPage(data, codec: codec, size: size, what: what).withUnsafeBytes(body)
    }
}
