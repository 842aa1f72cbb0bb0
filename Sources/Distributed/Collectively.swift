import Support

/// A user error every rank detects at the same point, e.g. ranks started inconsistently (exit 2, rank 0 reports it).
public struct AgreedUserError: AgreedStop {
    public let description: String
    public var exitStatus: Int32 { 2 }
    public var cause: ExitCause { .userError }
    /// An error whose text is shown as is.
    public init(_ description: String) { self.description = description }
}

/// Some rank failed inside `collectively`: every rank throws this; the lowest failing rank reports its own error.
public struct CollectiveFailure: AgreedStop {
    public let reportingRank: Int
    /// The failing rank's own error (nil on the other ranks).
    public let error: Error?
    public let exitStatus: Int32
    public let cause: ExitCause
    /// The reporting rank's message, known on every rank.
    let message: String
    public var description: String { message }
    public var rankInvolved: Int? { reportingRank }
}

/// Runs `body` on every rank, then lets all ranks learn whether any failed: if one did, every rank throws the same
/// `CollectiveFailure` (status 2 when every failure was the user's, else 1; the lowest failing rank's cause and
/// message), so no rank waits forever in a later collective and only the lowest failing rank prints.
public func collectively<Result>(_ communicator: Communicator, _ body: () throws -> Result) throws -> Result {
    var result: Result?
    var failure: Error?
    do { result = try body() } catch { failure = error }
    let firstFailing = try communicator.allreduceMin(Int64(failure == nil ? communicator.size : communicator.rank))
    guard firstFailing < Int64(communicator.size), let reporter = Int(exactly: firstFailing) else { return result! }
    let anyInternal = try communicator.allreduceMax(Int64(failure.map { isUserError($0) ? 0 : 1 } ?? 0))
    let own = reporter == communicator.rank ? failure : nil
    let causes = ExitCause.allCases
    var cause = Int64(own.map { causes.firstIndex(of: exitCause(of: $0)) ?? 0 } ?? 0)
    try withUnsafeMutableBytes(of: &cause) { try communicator.broadcast($0, root: reporter) }
    let message = try communicator.broadcast(own.map { String(describing: $0) } ?? "", root: reporter)
    // A user's mistake on the reporting rank and an internal failure elsewhere: the job failed internally.
    let reported = causes[Int(cause)], usersCause = reported == .userError || reported == .diskFull
    throw CollectiveFailure(reportingRank: reporter, error: own, exitStatus: anyInternal == 0 ? 2 : 1,
                            cause: anyInternal == 0 || !usersCause ? reported : .internal, message: message)
}
