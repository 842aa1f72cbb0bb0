// In a file of its own (no imports) so the fuzz targets (Tests/fuzz/run.sh) compile the readers with it alone.

/// A mistake in the user's input (config, data, checkpoint): reported as one line on stderr, exit status 2.
public struct UserError: Error, CustomStringConvertible, Equatable {
    /// The whole line shown to the user, naming the file:line or config key at fault.
    public let message: String

    /// Makes an error whose message is shown verbatim.
    public init(_ message: String) { self.message = message }

    public var description: String { message }
}
