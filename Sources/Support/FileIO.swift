import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Whole-file reads and crash-safe whole-file writes that report failures as one-line `UserError`s.
public enum FileIO {
    /// Reads every byte of a file; a missing or unreadable file is a `UserError` naming the path.
    public static func readBytes(path: String) throws -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        if descriptor < 0 { throw UserError("\(path): \(describeOpenFailure(errno))") }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw UserError("\(path): cannot read: \(errorText(errno))")
        }
        if (status.st_mode & S_IFMT) == S_IFDIR { throw UserError("\(path): is a directory, expected a file") }
        // st_size is only a hint (pipes, files growing while read): read until end of file.
        var bytes: [UInt8] = []
        bytes.reserveCapacity(max(Int(status.st_size), 0) + 1)
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let got = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if got < 0 {
                if errno == EINTR { continue }
                if errno == EISDIR { throw UserError("\(path): is a directory, expected a file") }
                throw UserError("\(path): cannot read: \(errorText(errno))")
            }
            if got == 0 { break }
            bytes.append(contentsOf: chunk[0..<got])
        }
        return bytes
    }

    /// Replaces `path` with `bytes` atomically: temporary file in the same directory, fsync, rename, fsync directory.
    /// On failure the previous file (if any) is left untouched and a `UserError` naming the path is thrown.
    public static func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        let directory = directoryName(of: path)
        let baseName = path.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init) ?? path
        if baseName.isEmpty { throw UserError("\(path): cannot write: path names a directory, not a file") }
        let temporary = "\(directory)/.\(baseName)\(temporaryMarker)\(getpid())-\(UInt32.random(in: 0...UInt32.max))"

        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if descriptor < 0 {
            throw writeFailure(path, errno, detail: " (creating a temporary file in \(directory))")
        }
        var closed = false
        var succeeded = false
        defer {
            if !closed { close(descriptor) }
            if !succeeded { unlink(temporary) }
        }
        try writeAll(bytes, to: descriptor, path: path)
        if fsync(descriptor) != 0 { throw writeFailure(path, errno, prefix: "fsync failed: ") }
        closed = true
        if close(descriptor) != 0 { throw writeFailure(path, errno) }
        if rename(temporary, path) != 0 {
            throw writeFailure(path, errno, prefix: "rename failed: ")
        }
        succeeded = true
        syncDirectory(of: path)
    }

    /// Makes a rename into the directory of `path` durable; the data is already safe, so a failure is not reported.
    static func syncDirectory(of path: String) {
        let directoryDescriptor = open(directoryName(of: path), O_RDONLY | O_CLOEXEC)
        if directoryDescriptor >= 0 {
            _ = fsync(directoryDescriptor)
            close(directoryDescriptor)
        }
    }

    /// Writes every byte to an open file (retrying short writes); a failure is a `UserError` naming `path`.
    public static func writeAll(_ bytes: [UInt8], to descriptor: Int32, path: String) throws {
        var written = 0
        while written < bytes.count {
            let result = bytes.withUnsafeBytes { raw in
                write(descriptor, raw.baseAddress! + written, raw.count - written)
            }
            if result < 0 {
                if errno == EINTR { continue }
                throw writeFailure(path, errno)
            }
            written += result
        }
    }

    /// A failed write of `path` as one line; out of space or quota is cause `disk_full` (still the user's to fix).
    static func writeFailure(_ path: String, _ code: Int32, prefix: String = "", detail: String = "") -> UserError {
        UserError("\(path): cannot write: \(prefix)\(errorText(code))\(detail)",
                  cause: code == ENOSPC || code == EDQUOT ? .diskFull : .userError)
    }

    /// What names a temporary file of `writeAtomically`: `.NAME.tmp-PID-RANDOM`.
    static let temporaryMarker = ".tmp-"

    /// Deletes the temporary files of writers killed mid-write in `directory` (only while no writer can be running
    /// there, e.g. under the run directory's lock); the files they were replacing are intact.
    public static func removeLeftoverTemporaries(in directory: String) {
        guard let listing = opendir(directory) else { return }
        defer { closedir(listing) }
        while let entry = readdir(listing) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name.hasPrefix(".") && name.contains(temporaryMarker) { unlink("\(directory)/\(name)") }
        }
    }

    /// Replaces `path` with the UTF-8 bytes of `text` atomically (see the byte form).
    public static func writeAtomically(_ text: String, to path: String) throws {
        try writeAtomically(Array(text.utf8), to: path)
    }

    /// Whether a regular file (or anything non-directory) exists at `path`.
    public static func fileExists(_ path: String) -> Bool {
        var status = stat()
        return stat(path, &status) == 0 && (status.st_mode & S_IFMT) != S_IFDIR
    }

    static func directoryName(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let head = path[..<slash]
        return head.isEmpty ? "/" : String(head)
    }

    public static func describeOpenFailure(_ code: Int32) -> String {
        switch code {
        case ENOENT: return "no such file"
        case EACCES: return "permission denied"
        case ENOTDIR: return "no such file (a parent is not a directory)"
        default: return "cannot open: \(errorText(code))"
        }
    }

    public static func errorText(_ code: Int32) -> String {
        guard let text = strerror(code) else { return "error \(code)" }
        return String(cString: text)
    }
}

/// `text` in double quotes for a one-line error message: control characters escaped, long text shortened.
public func quotedForMessage(_ text: String, limit: Int = 40) -> String {
    "\"" + escapedForMessage(text, limit: limit, escapingQuotes: true) + "\""
}

/// `text` with control characters (line breaks included) escaped as `\u{a}`, so a message stays on one line;
/// with `escapingQuotes` also `"` and `\`; text beyond `limit` characters becomes "…".
public func escapedForMessage(_ text: String, limit: Int = Int.max, escapingQuotes: Bool = false) -> String {
    var result = ""
    for (index, character) in text.enumerated() {
        if index == limit {
            result += "…"
            break
        }
        for scalar in character.unicodeScalars {
            switch scalar {
            case "\"" where escapingQuotes: result += "\\\""
            case "\\" where escapingQuotes: result += "\\\\"
            default:
                // C0 and C1 controls and the Unicode line/paragraph separators would break the line.
                if scalar.value < 0x20 || (0x7f...0x9f).contains(scalar.value) || scalar.value == 0x2028 || scalar.value == 0x2029 {
                    result += "\\u{\(String(scalar.value, radix: 16))}"
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
    }
    return result
}

/// `text` as a double-quoted string that is both valid JSON and valid YAML: quote, backslash and every
/// control or non-printable character escaped (`\n`, `\r`, `\t`, else `\uXXXX`), everything else as is.
public func quotedString(_ text: String) -> String {
    var result = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": result += "\\\""
        case "\\": result += "\\\\"
        case "\n": result += "\\n"
        case "\r": result += "\\r"
        case "\t": result += "\\t"
        // Below 0x20 for JSON; DEL, C1 controls, line/paragraph separators and BOM also for YAML readers.
        case _ where scalar.value < 0x20 || scalar.value == 0x7F || (0x80...0x9F).contains(scalar.value)
            || scalar.value == 0x2028 || scalar.value == 0x2029 || scalar.value == 0xFEFF:
            let hex = String(scalar.value, radix: 16)
            result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: result.unicodeScalars.append(scalar)
        }
    }
    return result + "\""
}

/// The operating system's reason for a failed Foundation file operation, as short text.
func describeFileError(_ error: Error) -> String {
    let nsError = error as NSError
    if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
        return String(cString: strerror(Int32(underlying.code)))
    }
    return nsError.localizedDescription
}
