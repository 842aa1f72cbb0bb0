import Distributed
import Foundation

// Library code throws; the `plexus` executable turns an error into its one stderr line and exit status:
// 0 success, 1 internal failure, 2 the user's mistake, 3 training diverged, 75 stopped (resume later).

/// An error every rank reaches at the same point, so the job can end without MPI_Abort: one rank reports it.
public protocol AgreedStop: Error, CustomStringConvertible {
    /// The process exit status for it.
    var exitStatus: Int32 { get }
    /// The rank that prints the message (rank 0 unless the stop was one rank's failure).
    var reportingRank: Int { get }
}

extension AgreedStop {
    public var reportingRank: Int { 0 }
}

/// Training stopped on a signal after saving a checkpoint (exit status 75, EX_TEMPFAIL: resume later).
public struct TrainingStopped: AgreedStop {
    public var exitStatus: Int32 { 75 }
    public let step: Int
    public let checkpoint: String?
    public var description: String {
        "stopped by signal after step \(step)" + (checkpoint.map { "; checkpoint \($0); continue with --resume" } ?? "")
    }
}

/// The loss or a gradient became NaN or infinite (or left the fixed-point range): training stops (exit status 3).
public struct TrainingDiverged: AgreedStop {
    public var exitStatus: Int32 { 3 }
    public let step: Int
    public let epoch: Int
    public let loss: Double
    public let fixedPointOverflow: Bool
    public let lastCheckpoint: String?
    public var description: String {
        let what = fixedPointOverflow
            ? "a gradient left the deterministic fixed-point range (|g| ≥ 2048 per group)"
            : "non-finite loss or gradient (loss \(loss))"
        return "\(what) at step \(step) (epoch \(epoch)); training stopped; "
            + (lastCheckpoint.map { "last good checkpoint: \($0)" } ?? "no checkpoint was saved")
    }
}

/// A user error every rank detects at the same point, e.g. ranks started inconsistently (exit 2, rank 0 reports it).
struct AgreedUserError: AgreedStop {
    let description: String
    var exitStatus: Int32 { 2 }
    init(_ description: String) { self.description = description }
}

/// Some rank failed inside `collectively`: every rank throws this; the lowest failing rank reports its own error.
public struct CollectiveFailure: AgreedStop {
    public let reportingRank: Int
    /// The failing rank's own error (nil on the other ranks).
    public let error: Error?
    public let exitStatus: Int32
    public var description: String { error.map { String(describing: $0) } ?? "rank \(reportingRank) failed" }
}

/// Runs `body` on every rank, then lets all ranks learn whether any failed: if one did, every rank throws the same
/// `CollectiveFailure` (status 2 when every failure was the user's, else 1), so no rank waits forever in a later
/// collective and only the lowest failing rank prints.
public func collectively(_ communicator: Communicator, _ body: () throws -> Void) throws {
    var failure: Error?
    do { try body() } catch { failure = error }
    let firstFailing = try communicator.allreduceMin(Int64(failure == nil ? communicator.size : communicator.rank))
    guard firstFailing < Int64(communicator.size) else { return }
    let anyInternal = try communicator.allreduceMax(Int64(failure.map { isUserError($0) ? 0 : 1 } ?? 0))
    throw CollectiveFailure(reportingRank: Int(firstFailing), error: Int(firstFailing) == communicator.rank ? failure : nil,
                            exitStatus: anyInternal == 0 ? 2 : 1)
}

/// Whether an error is the user's mistake (exit status 2).
public func isUserError(_ error: Error) -> Bool {
    if let failure = error as? CollectiveFailure { return failure.exitStatus == 2 }
    return error is UserError || error is AgreedUserError
}

/// The exit status for a command that ended with `error`.
public func exitStatus(of error: Error) -> Int32 {
    if let stop = error as? AgreedStop { return stop.exitStatus }
    return isUserError(error) ? 2 : 1
}

/// Prints one line for `error` on stderr, prefixed with the rank when there are several.
public func reportError(_ error: Error, rank: Int, worldSize: Int) {
    var error = error
    var prefix = "plexus: "
    if let failure = error as? CollectiveFailure, let own = failure.error {
        // One rank's failure: name the rank, as for an error only that rank met.
        error = own
        if worldSize > 1 { prefix += "rank \(rank): " }
    } else if !(error is AgreedStop || error is CollectiveStalled), worldSize > 1 {
        prefix += "rank \(rank): "
    }
    // One line whatever the error carries (a path from YAML may hold a line break).
    let text = String(describing: error).replacingOccurrences(of: "\n", with: "\\n")
    let kind = isUserError(error) || error is AgreedStop || error is CollectiveStalled ? "" : "error: "
    FileHandle.standardError.write(Data((prefix + kind + text + "\n").utf8))
}

/// The operating system's reason for a failed file operation, as short text.
func describeFileError(_ error: Error) -> String {
    let nsError = error as NSError
    if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
        return String(cString: strerror(Int32(underlying.code)))
    }
    return nsError.localizedDescription
}
