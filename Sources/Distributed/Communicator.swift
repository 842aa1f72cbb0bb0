/// Distributed: one Communicator for the world and its node groups (MPI, or ranks as threads): collectives, shared memory, ring sums, stall detection.

import Foundation

/// A failure inside the communication library (not the user's input).
struct CommunicationError: Error, CustomStringConvertible {
    let description: String
    /// An error whose text is shown as is.
    init(_ description: String) { self.description = description }
}

/// A group of ranks and the collectives training needs: the world, or a group of its ranks (`nodeGroups`). Every
/// rank of the group must call every collective, in the same order. A group shares its world's deadline: every wait
/// of the world and of its groups counts against it, and a stall in one is a stall in all (see Stall.swift).
public protocol Communicator: AnyObject {
    /// This process's index in 0..<size.
    var rank: Int { get }
    /// Number of ranks in the group.
    var size: Int { get }
    /// What launched this world ("local", "mpi", "in-process").
    var kind: String { get }
    /// Seconds a collective may wait for every rank: at half of it the lowest waiting rank warns, naming the ranks
    /// not yet arrived; at all of it the collective throws `CollectiveStalled` (and so does every later one).
    /// The world's: a group reads and sets its world's.
    var timeoutSeconds: Double { get set }
    /// What the ranks are doing, named when a collective stalls (set once per step: a store, no cost); the world's.
    var activity: Activity { get set }
    /// Seconds this rank has waited in collectives for other ranks so far, the world's and its groups' together,
    /// without the time it was held off its CPU meanwhile.
    var waitedSeconds: Double { get }

    /// Sums `count` values of `element` at `values` element-wise across the ranks, in place; every rank ends with
    /// the total. At 2 ranks each float is a + b; Int64 sums are exact, the same bits in any order.
    func allreduceSum(_ values: UnsafeMutableRawPointer, count: Int, of element: ReducedElement) throws
    /// Element-wise maximum of Int64 values across ranks, in place.
    func allreduceMax(_ values: UnsafeMutableBufferPointer<Int64>) throws
    /// Element-wise minimum of Int64 values across ranks, in place.
    func allreduceMin(_ values: UnsafeMutableBufferPointer<Int64>) throws
    /// Copies `bytes` from `root` to every rank (all ranks pass buffers of the same size).
    func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws
    /// Waits until every rank arrives.
    func barrier() throws
    /// Splits the group by node: `node` holds the ranks that share this rank's memory, `crossNode` the ranks of
    /// every node with this rank's index within its node (both ordered by rank). With `sharedMemory` false every
    /// rank is a node of its own (`node` has size 1, `crossNode` is the whole group). Every rank calls it.
    func nodeGroups(sharedMemory: Bool) throws -> (node: Communicator, crossNode: Communicator)
    /// Allocates `bytes` that every rank of this group maps (its ranks must share one node); every rank calls it.
    func sharedMemory(bytes: Int) throws -> SharedMemory
    /// A non-blocking ring sum over this group for buffers of at most `capacity` values; `tag` keeps the rings of
    /// one group apart.
    func ringSum(capacity: Int, tag: Int) -> RingSum
    /// Ends every rank of the job now with `status` (after this rank printed why).
    func abort(status: Int32) -> Never
    /// Shuts the world down at a normal exit (a group's does nothing).
    func finalize()
}

/// What a sum reduces: Float, Double, Int64 (exact) or bfloat16 (each pairwise sum rounded once).
public enum ReducedElement: Sendable {
    case float, double, int64, bfloat16

    /// Bytes per element.
    var size: Int {
        switch self {
        case .float: return 4
        case .double, .int64: return 8
        case .bfloat16: return 2
        }
    }
}

/// Memory that every rank of a node group maps: `base` is the same bytes on every rank of the group, 64-byte
/// aligned. Writes become visible to the other ranks at `synchronize`.
public protocol SharedMemory: AnyObject {
    /// This rank's address of the shared bytes.
    var base: UnsafeMutableRawPointer { get }
    /// A barrier of the group that also makes every rank's writes to the shared memory visible to the others.
    func synchronize() throws
}

extension Communicator {
    /// Sums `buffer` element-wise across ranks, in place; every rank ends with the total.
    public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
        guard let base = buffer.baseAddress else { return }
        try allreduceSum(base, count: buffer.count, of: .float)
    }

    /// Sums Double values across ranks, in place.
    public func allreduceSum(_ values: UnsafeMutableBufferPointer<Double>) throws {
        guard let base = values.baseAddress else { return }
        try allreduceSum(base, count: values.count, of: .double)
    }

    /// Sums Int64 values across ranks, in place: exact, so the same bits in any reduction order.
    public func allreduceSum(_ values: UnsafeMutableBufferPointer<Int64>) throws {
        guard let base = values.baseAddress else { return }
        try allreduceSum(base, count: values.count, of: .int64)
    }

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

/// The communicator for this process: MPI under a launcher, otherwise the world of one (`InProcessCommunicator()`).
/// MPI's start-up, and every collective until the first step, may take `startUpTimeoutSeconds`.
public func makeCommunicator(startUpTimeoutSeconds: Double = CollectiveTimeout.startUpDefault) throws -> Communicator {
    MPICommunicator.launchedByMPI ? try MPICommunicator(startUpTimeoutSeconds: startUpTimeoutSeconds) : InProcessCommunicator()
}
