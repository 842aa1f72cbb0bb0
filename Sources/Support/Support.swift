/// Support: the exit contract, the diagnostics sink, file I/O, JSON and SHA-256 that every other target uses.

// Library code throws; the `plexus` executable turns an error into its one stderr line and exit status:
// 0 success, 1 internal failure or a lost rank, 2 the user's mistake, 3 training diverged, 75 stopped (resume later).

/// What ended a command, as RUN_DIR/exit.json records it.
public enum ExitCause: String, Codable, Sendable, CaseIterable {
    case completed
    case userError = "user_error"
    case diskFull = "disk_full"
    case diverged
    case stalled
    case rankLost = "rank_lost"
    case signal
    case `internal`
}

/// An error that knows the exit status and cause it ends a command with.
public protocol ClassifiedError: Error {
    /// The process exit status for it.
    var exitStatus: Int32 { get }
    /// What ended the command (exit.json's `cause`).
    var cause: ExitCause { get }
    /// The rank the error is about, if it names one (exit.json's `rank`; nil by default).
    var rankInvolved: Int? { get }
    /// The optimizer step it happened at, if it knows (exit.json's `step`; nil by default).
    var stepInvolved: Int? { get }
}

extension ClassifiedError {
    public var rankInvolved: Int? { nil }
    public var stepInvolved: Int? { nil }
}

/// An error every rank reaches at the same point, so the job can end without aborting: one rank reports it.
public protocol AgreedStop: ClassifiedError, CustomStringConvertible {
    /// The rank that prints the message (rank 0 unless the stop was one rank's failure).
    var reportingRank: Int { get }
}

extension AgreedStop {
    public var reportingRank: Int { 0 }
}

/// The exit status for a command that ended with `error`: its own for a classified error, else 1 (internal).
public func exitStatus(of error: Error) -> Int32 {
    (error as? ClassifiedError)?.exitStatus ?? 1
}

/// What ended a command with `error` (`internal` for an error that does not say).
public func exitCause(of error: Error) -> ExitCause {
    (error as? ClassifiedError)?.cause ?? .internal
}

/// Whether an error is the user's mistake (exit status 2).
public func isUserError(_ error: Error) -> Bool { exitStatus(of: error) == 2 }

// MARK: - Diagnostics

/// What a line the library reports is: the command's own progress output, a note, or a warning.
public enum DiagnosticKind: Sendable {
    /// Progress of the command (the first line, epoch lines): standard output. A live line ends without a newline.
    case progress
    /// Something worth knowing (which reduction runs, a resume): standard output, prefixed `plexus: `.
    case note
    /// Something that may be wrong: standard error, prefixed `plexus: warning: `.
    case warning
}

/// Where library code sends what it has to tell the user; the executable installs the one that writes its streams.
public protocol DiagnosticSink: AnyObject {
    /// Shows `text` (already complete: prefixed, and ending in a newline unless it is a live progress line).
    func emit(_ kind: DiagnosticKind, _ text: String)
}

/// The one sink library code reports through.
public enum Diagnostics {
    /// The installed sink; nil (the default in library tests) drops every line.
    nonisolated(unsafe) public static var sink: DiagnosticSink?

    /// A note: `plexus: MESSAGE`.
    public static func note(_ message: String) { sink?.emit(.note, "plexus: \(message)\n") }

    /// A warning: `plexus: warning: MESSAGE`.
    public static func warning(_ message: String) { sink?.emit(.warning, "plexus: warning: \(message)\n") }

    /// Progress text exactly as given (the caller adds the newline, or a carriage return for a live line).
    public static func progress(_ text: String) { sink?.emit(.progress, text) }
}
