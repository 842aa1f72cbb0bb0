import CZlib
import Support

/// zlib's inflate, the one wrapper of its stream: raw deflate (zip members) or gzip with every concatenated member
/// (IDX files), gzip or zlib (compressed Parquet pages). Input stays where the caller keeps it; `offer` hands zlib
/// more of it.
public final class Inflater {
    enum Framing {
        case raw, gzip
        /// A gzip or a zlib header, whichever the stream starts with.
        case gzipOrZlib
    }

    /// What one call of `inflate` ended with.
    enum Status: Equatable {
        /// Progress was made (or can be, with more input or room).
        case ok
        /// The stream's end was reached.
        case streamEnd
        /// No progress was possible: no input left, or no room to write.
        case noProgress
        /// The data is not valid deflate (zlib's reason).
        case corrupt(String)
    }

    private var stream = z_stream()

    /// A stream for `framing`; `path` names the file if zlib cannot start.
    init(_ framing: Framing, path: String) throws {
        let bits: Int32
        switch framing {
        case .raw: bits = -MAX_WBITS
        case .gzip: bits = 16 + MAX_WBITS
        case .gzipOrZlib: bits = 32 + MAX_WBITS
        }
        guard inflateInit2_(&stream, bits, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw UserError("\(path): cannot initialize \(framing == .raw ? "deflate" : "gzip") decompression")
        }
    }

    deinit { inflateEnd(&stream) }

    /// Input bytes handed to zlib and not yet consumed.
    var pendingInput: Int { Int(stream.avail_in) }

    /// Makes `count` bytes at `input` the stream's input (replacing whatever was pending).
    func start(at input: UnsafePointer<UInt8>, count: Int) {
        stream.next_in = UnsafeMutablePointer(mutating: input)
        stream.avail_in = UInt32(count)
    }

    /// Offers `count` more bytes that follow the input consumed so far (the pending input must be used up).
    func offer(_ count: Int) { stream.avail_in = UInt32(count) }

    /// Inflates into at most `count` bytes at `output`; returns the bytes written and how the call ended.
    func inflate(into output: UnsafeMutablePointer<UInt8>, count: Int) -> (produced: Int, status: Status) {
        stream.next_out = output
        stream.avail_out = UInt32(count)
        let code = CZlib.inflate(&stream, Z_NO_FLUSH)
        let produced = count - Int(stream.avail_out)
        switch code {
        case Z_OK: return (produced, .ok)
        case Z_STREAM_END: return (produced, .streamEnd)
        case Z_BUF_ERROR: return (produced, .noProgress)
        default: return (produced, .corrupt(stream.msg.map { String(cString: $0) } ?? "invalid data"))
        }
    }

    /// Starts a new member after a stream end (gzip files may hold several); false if zlib refuses.
    func reset() -> Bool { inflateReset(&stream) == Z_OK }

    /// Inflates a whole gzip file (all concatenated members), sizing the output from the ISIZE trailer as a hint only.
    static func gunzip(_ compressed: [UInt8], path: String) throws -> [UInt8] {
        // ISIZE is the uncompressed length mod 2^32 of the last member; it may be wrong, so it only seeds capacity.
        var capacity = compressed.count * 4
        if compressed.count >= 18 {
            let tail = compressed.count - 4
            let hint = Int(compressed[tail]) | Int(compressed[tail + 1]) << 8 | Int(compressed[tail + 2]) << 16 | Int(compressed[tail + 3]) << 24
            if hint > 0, hint <= compressed.count * 1100 { capacity = hint }
        }
        var output = [UInt8](repeating: 0, count: max(capacity, 1024))
        var produced = 0
        let inflater = try Inflater(.gzip, path: path)
        try compressed.withUnsafeBufferPointer { input in
            guard let inputBase = input.baseAddress else { return }
            var consumed = 0
            while true {
                let chunk = min(input.count - consumed, Int(UInt32.max / 2))
                inflater.start(at: inputBase + consumed, count: chunk)
                if produced == output.count { output.append(contentsOf: repeatElement(0, count: output.count)) }
                let room = min(output.count - produced, Int(UInt32.max / 2))
                let (got, status) = output.withUnsafeMutableBufferPointer { buffer in
                    inflater.inflate(into: buffer.baseAddress! + produced, count: room)
                }
                consumed += chunk - inflater.pendingInput
                produced += got
                switch status {
                case .streamEnd:
                    // gzip allows several concatenated members; trailing bytes that are not another member are ignored.
                    if consumed + 2 <= input.count, input[consumed] == 0x1f, input[consumed + 1] == 0x8b {
                        guard inflater.reset() else { throw UserError("\(path): corrupt gzip data (cannot start the next member)") }
                        continue
                    }
                    return
                case .ok:
                    continue
                case .noProgress:
                    // No progress: either the output is full (grow and retry) or the input ended early.
                    if produced < output.count && consumed >= input.count {
                        throw UserError("\(path): corrupt gzip data (stream ends early; is the file truncated?)")
                    }
                    continue
                case let .corrupt(detail):
                    throw UserError("\(path): corrupt gzip data (\(detail))")
                }
            }
        }
        output.removeSubrange(produced..<output.count)
        return output
    }

    /// Inflates the gzip (or zlib) stream `input` into `output`, which must be exactly filled; data that is corrupt or
    /// inflates to another size is a `UserError` "`what`: ..." (e.g. "PATH: column x: page at byte N").
    public static func inflate(gzip input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer,
                               what: String) throws {
        guard input.count <= Int(UInt32.max), output.count < Int(UInt32.max) else {
            throw UserError("\(what): a gzip page of \(input.count) bytes is too large")
        }
        guard let inputBase = input.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
            throw UserError("\(what): corrupt gzip data (no bytes)")
        }
        let inflater = try Inflater(.gzipOrZlib, path: what)
        inflater.start(at: inputBase, count: input.count)
        let outputBase = output.baseAddress?.assumingMemoryBound(to: UInt8.self)
        var spare: UInt8 = 0
        var produced = 0
        while true {
            // Once the output is full, one spare byte tells a stream that is longer than promised from one that ends.
            let (got, status) = produced < output.count ? inflater.inflate(into: outputBase! + produced, count: output.count - produced)
                : inflater.inflate(into: &spare, count: 1)
            produced += got
            switch status {
            case .streamEnd where produced == output.count:
                return
            case .ok where produced <= output.count:
                continue
            case .streamEnd, .ok:
                throw UserError("\(what): gzip data inflates to " + (produced > output.count ? "more than" : "\(produced) bytes, not")
                    + " the \(output.count) bytes the page header says")
            case .noProgress:
                throw UserError("\(what): corrupt gzip data (the stream ends early)")
            case let .corrupt(detail):
                throw UserError("\(what): corrupt gzip data (\(detail))")
            }
        }
    }
}
