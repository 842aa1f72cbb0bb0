import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How a job ended, as RUN_DIR/exit.json holds it: one JSON object that `launch/supervise` decides restarts from.
public struct ExitRecord: Codable, Equatable, Sendable {
    /// The process exit status (0, 1, 2, 3 or 75).
    public let status: Int32
    /// What ended the job.
    public let cause: ExitCause
    /// The rank the ending is about (the failing or stalled one), nil when it is the job's as a whole.
    public let rank: Int?
    /// The optimizer step it happened at (the last one for a finished run), nil when not known.
    public let step: Int?
    /// The line printed: the error line, or the last progress line of a finished run.
    public let message: String

    /// A record of the job's end.
    public init(status: Int32, cause: ExitCause, rank: Int?, step: Int?, message: String) {
        (self.status, self.cause, self.rank, self.step, self.message) = (status, cause, rank, step, message)
    }

    private enum CodingKeys: String, CodingKey { case status, cause, rank, step, message }

    // Every key is always there (null when not known), so readers need not test for it.
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(status, forKey: .status)
        try container.encode(cause, forKey: .cause)
        try container.encode(rank, forKey: .rank)
        try container.encode(step, forKey: .step)
        try container.encode(message, forKey: .message)
    }

    /// The record in `files` (exit.json); a missing or unreadable one is a `UserError` naming it.
    public static func read(_ files: RunDirectory) throws -> ExitRecord {
        let path = files[.exitRecord]
        do {
            return try JSONDecoder().decode(ExitRecord.self, from: Data(try FileIO.readBytes(path: path)))
        } catch let error as UserError {
            throw error
        } catch {
            throw UserError("\(path): not an exit record (\(error))")
        }
    }
}

/// RUN_DIR/exit.json with its space claimed when the run starts, so that even a full disk can still record
/// `disk_full`: a padded hidden file is written at the start, overwritten in place at the end, synced and renamed.
///
/// Only the writer of the run directory (rank 0, holding its lock) makes one. On a file system that does not write
/// in place (copy on write) the claimed space may not be enough; the record is then lost with the space.
public final class ClaimedExitRecord {
    let files: RunDirectory
    private var descriptor: Int32
    /// Bytes claimed: far more than a record of one line needs.
    static let claimedBytes = 16_384

    /// Removes a previous job's exit.json and claims the space of this job's; a failure is a `UserError` naming it.
    public init(_ files: RunDirectory) throws {
        self.files = files
        let path = files.claimedExitRecord
        if unlink(files[.exitRecord]) != 0 && errno != ENOENT {
            throw UserError("\(files[.exitRecord]): cannot remove the previous job's record: \(FileIO.errorText(errno))")
        }
        descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if descriptor < 0 { throw FileIO.writeFailure(path, errno) }
        do {
            try FileIO.writeAll([UInt8](repeating: UInt8(ascii: " "), count: Self.claimedBytes - 1) + [10], to: descriptor,
                                path: path)
            if fsync(descriptor) != 0 { throw FileIO.writeFailure(path, errno, prefix: "fsync failed: ") }
        } catch {
            release()
            throw error
        }
    }

    deinit { if descriptor >= 0 { close(descriptor) } }

    /// Writes `record` as exit.json through the claimed space (once; later calls do nothing).
    public func write(_ record: ExitRecord) throws {
        guard descriptor >= 0 else { return }
        let path = files.claimedExitRecord
        let bytes = Array((JSON.text(Self.fitting(record)) + "\n").utf8)
        defer { close(descriptor); descriptor = -1 }
        var written = 0
        while written < bytes.count {
            let result = bytes.withUnsafeBytes { pwrite(descriptor, $0.baseAddress! + written, $0.count - written, off_t(written)) }
            if result < 0 {
                if errno == EINTR { continue }
                throw FileIO.writeFailure(path, errno)
            }
            written += result
        }
        if ftruncate(descriptor, off_t(bytes.count)) != 0 { throw FileIO.writeFailure(path, errno) }
        if fsync(descriptor) != 0 { throw FileIO.writeFailure(path, errno, prefix: "fsync failed: ") }
        if rename(path, files[.exitRecord]) != 0 { throw FileIO.writeFailure(files[.exitRecord], errno, prefix: "rename failed: ") }
        FileIO.syncDirectory(of: path)
    }

    /// Gives the claimed space back without writing a record (the run directory is about to be removed).
    public func release() {
        guard descriptor >= 0 else { return }
        close(descriptor)
        descriptor = -1
        unlink(files.claimedExitRecord)
    }

    /// `record` with its message shortened until the whole record fits the claimed space.
    static func fitting(_ record: ExitRecord) -> ExitRecord {
        var fitted = record
        while JSON.text(fitted).utf8.count >= claimedBytes {
            fitted = ExitRecord(status: record.status, cause: record.cause, rank: record.rank, step: record.step,
                                message: String(fitted.message.prefix(fitted.message.count / 2)) + "…")
        }
        return fitted
    }
}
