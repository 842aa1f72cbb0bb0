/// A mistake in the user's input (config, data, checkpoint) or a full disk: one line on stderr, exit status 2.
public struct UserError: ClassifiedError, CustomStringConvertible, Equatable {
    /// The whole line shown to the user, naming the file:line or config key at fault.
    let message: String
    /// `user_error`, or `disk_full` when a write ran out of space.
    public let cause: ExitCause

    /// Makes an error whose message is shown verbatim.
    public init(_ message: String, cause: ExitCause = .userError) {
        self.message = message
        self.cause = cause
    }

    public var description: String { message }
    public var exitStatus: Int32 { 2 }
}
