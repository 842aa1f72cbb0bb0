import Foundation

/// A failure inside the communication library (not the user's input).
struct CommunicationError: Error, CustomStringConvertible {
    let description: String
    /// An error whose text is shown as is.
    init(_ description: String) { self.description = description }
}

/// The collectives training needs. Every rank must call every collective, in the same order.
public protocol Communicator: AnyObject {
    /// This process's index in 0..<size.
    var rank: Int { get }
    /// Number of processes in the job.
    var size: Int { get }
    /// What launched this world ("local", "mpi").
    var kind: String { get }
    /// Seconds a collective may wait for every rank: at half of it the lowest waiting rank warns, naming the ranks
    /// not yet arrived; at all of it the collective throws `CollectiveStalled` (and so does every later one).
    var timeoutSeconds: Double { get set }
    /// What the ranks are doing, named when a collective stalls (set once per step: a store, no cost).
    var activity: Activity { get set }

    /// Sums `buffer` element-wise across ranks, in place; every rank ends with the total.
    func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws
    /// Sums Double values across ranks, in place.
    func allreduceSum(_ values: UnsafeMutableBufferPointer<Double>) throws
    /// Sums Int64 values across ranks, in place: exact, so the same bits in any reduction order.
    func allreduceSum(_ values: UnsafeMutableBufferPointer<Int64>) throws
    /// Element-wise maximum of Int64 values across ranks, in place.
    func allreduceMax(_ values: UnsafeMutableBufferPointer<Int64>) throws
    /// Element-wise minimum of Int64 values across ranks, in place.
    func allreduceMin(_ values: UnsafeMutableBufferPointer<Int64>) throws
    /// Copies `bytes` from `root` to every rank (all ranks pass buffers of the same size).
    func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws
    /// Waits until every rank arrives.
    func barrier() throws
    /// Ends every rank of the job now with `status` (after this rank printed why).
    func abort(status: Int32) -> Never
    /// Shuts the communicator down at a normal exit.
    func finalize()
}

extension Communicator {
    /// Sums a small array of Doubles across ranks.
    public func allreduceSum(_ values: [Double]) throws -> [Double] {
        var copy = values
        try copy.withUnsafeMutableBufferPointer { try allreduceSum($0) }
        return copy
    }

    /// The maximum of one integer over all ranks.
    public func allreduceMax(_ value: Int64) throws -> Int64 {
        var copy = [value]
        try copy.withUnsafeMutableBufferPointer { try allreduceMax($0) }
        return copy[0]
    }

    /// The minimum of one integer over all ranks.
    public func allreduceMin(_ value: Int64) throws -> Int64 {
        var copy = [value]
        try copy.withUnsafeMutableBufferPointer { try allreduceMin($0) }
        return copy[0]
    }

    /// Broadcasts a string of any length from `root` (its length first, then its bytes).
    public func broadcast(_ string: String, root: Int) throws -> String {
        var length = Int64(string.utf8.count)
        try withUnsafeMutableBytes(of: &length) { try broadcast($0, root: root) }
        var bytes = rank == root ? Array(string.utf8) : [UInt8](repeating: 0, count: Int(length))
        try bytes.withUnsafeMutableBytes { try broadcast($0, root: root) }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// The world of one process: every collective is the identity. Used whenever plexus runs without a launcher.
public final class LocalCommunicator: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public var kind: String { "local" }
    public var timeoutSeconds = CollectiveTimeout.startUpDefault
    public var activity = Activity.startUp
    public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {}
    public func allreduceSum(_ values: UnsafeMutableBufferPointer<Double>) throws {}
    public func allreduceSum(_ values: UnsafeMutableBufferPointer<Int64>) throws {}
    public func allreduceMax(_ values: UnsafeMutableBufferPointer<Int64>) throws {}
    public func allreduceMin(_ values: UnsafeMutableBufferPointer<Int64>) throws {}
    public func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws {}
    public func barrier() throws {}
    public func abort(status: Int32) -> Never { exit(status) }
    public func finalize() {}
}
