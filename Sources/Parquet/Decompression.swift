import Formats
import Support

/// Libzstd, loaded the first time a ZSTD page is read (the build does not link it).
private final class Zstandard: @unchecked Sendable {
    typealias Decompress = @convention(c) (UnsafeMutableRawPointer?, Int, UnsafeRawPointer?, Int) -> Int
    typealias IsError = @convention(c) (Int) -> UInt32
    typealias ErrorName = @convention(c) (Int) -> UnsafePointer<CChar>?

    let decompress: Decompress
    let isError: IsError
    let errorName: ErrorName
    private let library: SharedLibrary

    /// The library, opened once per process (or the error saying it is missing, every time it is needed).
    static let shared = Result { try Zstandard() }

    private init() throws {
        library = try SharedLibrary(sonames: ["libzstd.so.1"], purpose: "reading ZSTD-compressed Parquet pages",
                                    install: "Debian and Ubuntu: apt-get install libzstd1; Fedora: dnf install libzstd")
        decompress = try library.symbol("ZSTD_decompress", as: Decompress.self)
        isError = try library.symbol("ZSTD_isError", as: IsError.self)
        errorName = try library.symbol("ZSTD_getErrorName", as: ErrorName.self)
    }
}

enum Decompression {
    /// Deflate expands at most about 1032 : 1 and Snappy about 22 : 1 (a 3-byte copy of 64 bytes); a page header
    /// claiming more is corrupt, and is refused before its output is allocated.
    static func largestExpansion(_ codec: Codec) -> Int {
        switch codec {
        case .snappy: return 22
        case .gzip: return 1032
        // A Zstandard block of one repeated byte can be 3 bytes for 128 KiB.
        default: return 44_000
        }
    }

    /// Pages larger than this are refused (writers make pages of about 1 MiB).
    static let largestPage = 1 << 30

    /// Calls `body` with `input` decompressed with `codec` into exactly `size` bytes (uncompressed input as it is);
    /// `what` names the page in errors.
    static func withPage<Result>(_ input: UnsafeRawBufferPointer, codec: Codec, size: Int, what: String,
                                 _ body: (UnsafeRawBufferPointer) throws -> Result) throws -> Result {
        if codec == .uncompressed {
            guard input.count == size else {
                throw UserError("\(what): an uncompressed page of \(input.count) bytes whose header says \(size)")
            }
            return try body(input)
        }
        return try decompressed(input, codec: codec, size: size, what: what).withUnsafeBytes(body)
    }

    /// `input` decompressed with `codec` (not `uncompressed`) into exactly `size` bytes; `what` names the page in
    /// errors.
    static func decompressed(_ input: UnsafeRawBufferPointer, codec: Codec, size: Int, what: String) throws -> [UInt8] {
        guard [.snappy, .gzip, .zstd].contains(codec) else {
            throw UserError("\(what): pages compressed with \(codec.name) are not supported "
                + "(write with compression='snappy', 'gzip', 'zstd' or 'none')")
        }
        guard size <= largestPage, size <= input.count * largestExpansion(codec) + 64 else {
            throw UserError("\(what): the page header says \(input.count) \(codec.name) bytes hold \(size) (corrupt header)")
        }
        // Not cleared first: each codec below fills exactly `size` bytes or throws.
        return try [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            let output = UnsafeMutableRawBufferPointer(buffer)
            switch codec {
            case .snappy: try Snappy.decompress(input, into: output, what: what)
            case .gzip: try Inflater.inflate(gzip: input, into: output, what: what)
            case .zstd:
                let zstd = try Zstandard.shared.get()
                let result = zstd.decompress(output.baseAddress, output.count, input.baseAddress, input.count)
                if zstd.isError(result) != 0 {
                    let reason = zstd.errorName(result).map { String(cString: $0) } ?? "error \(result)"
                    throw UserError("\(what): corrupt ZSTD data (\(reason))")
                }
                guard result == size else { throw UserError("\(what): ZSTD data holds \(result) bytes, the page header says \(size)") }
            default: preconditionFailure("unsupported codecs are refused above")
            }
            initialized = size
        }
    }
}
