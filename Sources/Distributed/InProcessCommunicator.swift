import Dispatch
import Foundation
import Kernels

/// A rank of a world inside this process. `InProcessCommunicator()` is the world of one that plexus runs without a
/// launcher: rank 0 of 1, whose collectives return at once and whose groups and shared memory are its own.
/// Worlds of several ranks as threads come from `InProcessWorld.run` (tests).
///
/// Sums add the ranks' values in rank order, so at 2 ranks each is a + b, the bits of MPI's sum; a ring sum runs
/// `RingSum`'s own steps over mailboxes, the bits it gives under MPI.
public final class InProcessCommunicator: Communicator {
    public let rank: Int
    public let size: Int
    public var kind: String { world == nil ? "local" : "in-process" }
    public var timeoutSeconds: Double {
        get { state.timeoutSeconds }
        set { state.timeoutSeconds = newValue }
    }
    public var activity: Activity {
        get { state.activity }
        set { state.activity = newValue }
    }
    /// Seconds this rank spent in collectives so far, the world's and its groups' together: each one's whole time
    /// (ranks as threads are never held off a CPU by a quota the way a process is, so nothing is subtracted).
    public var waitedSeconds: Double { state.waitedSeconds }
    /// The world of several threads this rank belongs to (nil for the world of one).
    private let world: InProcessWorld?
    /// What the group's ranks share; nil when the group is this rank alone.
    private let group: InProcessGroup?
    /// World ranks of the group's members, in group order.
    private let members: [Int]
    /// This rank's deadline and stall, shared by its world and every group of it.
    let state: InProcessRankState
    /// Groups this communicator has split off so far (the same count on every rank: splitting is collective).
    private var splits = 0

    /// The world of one process: every collective is the identity.
    public convenience init() {
        self.init(world: nil, group: nil, members: [0], rank: 0, state: InProcessRankState())
    }

    /// Rank `rank` of `members` (world ranks) of `world`, talking through `group`.
    init(world: InProcessWorld?, group: InProcessGroup?, members: [Int], rank: Int, state: InProcessRankState = InProcessRankState()) {
        self.world = world
        self.members = members
        self.rank = rank
        size = members.count
        self.group = members.count > 1 ? group : nil
        self.state = state
    }

    public func allreduceSum(_ values: UnsafeMutableRawPointer, count: Int, of element: ReducedElement) throws {
        guard size > 1, count > 0 else { return }
        let all = try gather(values, bytes: count * element.size, call: "allreduce").map { $0! }
        values.copyMemory(from: all[0].base, byteCount: all[0].count)
        for other in all.dropFirst() {
            switch element {
            case .float:
                addProduct(other.base.bindMemory(to: Float.self, capacity: count), scaledBy: 1,
                           to: values.assumingMemoryBound(to: Float.self), count: count)
            case .double:
                let total = values.assumingMemoryBound(to: Double.self), value = other.base.bindMemory(to: Double.self, capacity: count)
                for index in 0..<count { total[index] += value[index] }
            case .int64:
                addIntegers(other.base.bindMemory(to: Int64.self, capacity: count), into: values.assumingMemoryBound(to: Int64.self),
                            count: count)
            case .bfloat16:
                addBFloat16(other.base.bindMemory(to: UInt16.self, capacity: count), into: values.assumingMemoryBound(to: UInt16.self),
                            count: count)
            }
        }
    }

    public func allreduceMax(_ values: UnsafeMutableBufferPointer<Int64>) throws { try extremum(values, max) }
    public func allreduceMin(_ values: UnsafeMutableBufferPointer<Int64>) throws { try extremum(values, min) }

    private func extremum(_ values: UnsafeMutableBufferPointer<Int64>, _ pick: (Int64, Int64) -> Int64) throws {
        guard size > 1, let base = values.baseAddress, values.count > 0 else { return }
        for other in try gather(base, bytes: values.count * 8, call: "allreduce") {
            let value = other!.base.bindMemory(to: Int64.self, capacity: values.count)
            for index in values.indices { values[index] = pick(values[index], value[index]) }
        }
    }

    public func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws {
        guard size > 1, let base = bytes.baseAddress, bytes.count > 0 else { return }
        let sent = try gather(rank == root ? base : nil, bytes: bytes.count, call: "broadcast")[root]!
        precondition(sent.count == bytes.count, "broadcast: ranks pass buffers of different sizes")
        if rank != root { base.copyMemory(from: sent.base, byteCount: sent.count) }
    }

    public func barrier() throws {
        guard size > 1 else { return }
        _ = try gather(nil, bytes: 0, call: "barrier")
    }

    /// What every member brought once all have come: this rank brings a copy of `bytes` bytes at `values` (or
    /// `shared`, or nothing).
    private func gather(_ values: UnsafeMutableRawPointer?, bytes: Int, call: String,
                        shared: InProcessBytes? = nil) throws -> [InProcessBytes?] {
        if let stall = state.stall { throw stall }
        let copy = values.map { InProcessBytes(copying: $0, count: bytes) } ?? shared
        return try state.timingWait { try group!.gather(copy, from: rank, state: state, call: call) }
    }

    public func nodeGroups(sharedMemory: Bool) throws -> (node: Communicator, crossNode: Communicator) {
        guard let world, size > 1 else {
            return (InProcessCommunicator(world: world, group: nil, members: [members[rank]], rank: 0, state: state),
                    InProcessCommunicator(world: world, group: group, members: members, rank: rank, state: state))
        }
        splits += 1
        // As MPI_Comm_split_type(SHARED) and MPI_Comm_split by index within the node, both keyed by this group's rank.
        func node(of member: Int) -> [Int] {
            sharedMemory ? members.filter { world.node(of: $0) == world.node(of: member) } : [member]
        }
        let me = members[rank], nodeMembers = node(of: me), index = nodeMembers.firstIndex(of: me)!
        let crossMembers = members.filter { node(of: $0).firstIndex(of: $0) == index }
        let name = "\(ObjectIdentifier(group!).hashValue) split \(splits)"
        let nodeGroup = world.group(named: "\(name) node \(nodeMembers)", members: nodeMembers)
        let crossGroup = world.group(named: "\(name) cross \(crossMembers)", members: crossMembers)
        return (InProcessCommunicator(world: world, group: nodeGroup, members: nodeMembers, rank: index, state: state),
                InProcessCommunicator(world: world, group: crossGroup, members: crossMembers,
                                      rank: crossMembers.firstIndex(of: me)!, state: state))
    }

    public func sharedMemory(bytes: Int) throws -> SharedMemory {
        guard let world, size > 1 else { return InProcessSharedMemory(region: InProcessBytes(count: bytes), group: self) }
        guard Set(members.map(world.node(of:))).count == 1 else {
            throw CommunicationError("shared memory for ranks \(members) of different nodes")
        }
        // Rank 0 allocates the region, every rank maps it (as MPI_Win_allocate_shared).
        let all = try gather(nil, bytes: 0, call: "shared memory allocation", shared: rank == 0 ? InProcessBytes(count: bytes) : nil)
        return InProcessSharedMemory(region: all[0]!, group: self)
    }

    public func ringSum(capacity: Int, tag: Int) -> RingSum {
        RingSum(capacity: capacity, transport: InProcessRingTransport(communicator: self, tag: tag))
    }

    public func abort(status: Int32) -> Never {
        guard let world else {
            fflush(stdout)
            fflush(stderr)
            exit(status)
        }
        // Ranks that are threads: this one ends, the others' waits throw, the process goes on.
        world.abort(members[rank], status: status)
        Thread.exit()
        fatalError("Thread.exit returned")
    }

    public func finalize() {}

    /// A ring sum's messages over the group's mailboxes: a send is a copy left for the receiver.
    private final class InProcessRingTransport: RingTransport {
        private let communicator: InProcessCommunicator
        private let tag: Int
        /// The receive in flight: its buffer and source, until it is taken from the mailbox.
        private var pending: (target: UnsafeMutableRawBufferPointer, source: Int)?

        init(communicator: InProcessCommunicator, tag: Int) {
            self.communicator = communicator
            self.tag = tag
        }

        var rank: Int { communicator.rank }
        var size: Int { communicator.size }

        func exchange(sending: UnsafeMutableRawPointer, count: Int, to destination: Int, receiving: UnsafeMutableRawPointer,
                      count receivedCount: Int, from source: Int, of element: ReducedElement) throws {
            if let stall = communicator.state.stall { throw stall }
            let group = communicator.group!
            pending = (UnsafeMutableRawBufferPointer(start: receiving, count: receivedCount * element.size), source)
            group.send(UnsafeRawBufferPointer(start: sending, count: count * element.size), from: rank, to: destination, tag: tag)
        }

        func exchanged() throws -> Bool {
            guard let (target, source) = pending else { return true }
            guard communicator.group!.receive(into: target, from: source, to: rank, tag: tag) else { return false }
            pending = nil
            return true
        }

        func complete(_ call: String, progress: () throws -> Bool) throws {
            let state = communicator.state
            if let stall = state.stall { throw stall }
            let deadline = Date(timeIntervalSinceNow: state.timeoutSeconds)
            try state.timingWait {
                while true {
                    let sends = communicator.group?.sendCount ?? 0
                    if try progress() { return }
                    try communicator.group!.waitForSend(after: sends, from: pending!.source, until: deadline, state: state, call: call)
                }
            }
        }
    }
}

/// One rank's deadline and stall in an in-process world: its world communicator and its groups share it.
final class InProcessRankState {
    var timeoutSeconds = CollectiveTimeout.startUpDefault
    var activity = Activity.startUp
    /// Set once a wait passed its deadline: every later collective throws it at once.
    private(set) var stall: CollectiveStalled?
    /// Seconds spent in collectives so far.
    private(set) var waitedSeconds = 0.0

    /// `body`'s result, its wall time added to `waitedSeconds`.
    func timingWait<Result>(_ body: () throws -> Result) rethrows -> Result {
        let start = DispatchTime.now().uptimeNanoseconds
        defer { waitedSeconds += Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9 }
        return try body()
    }

    /// The stall of a wait for `ranks` (world ranks) that passed its deadline, kept for every later collective.
    func stalled(waitingFor ranks: [Int]) -> CollectiveStalled {
        let stalled = CollectiveStalled(ranks: ranks, activity: activity, timeoutSeconds: timeoutSeconds)
        stall = stalled
        return stalled
    }
}

/// The shared memory of an in-process node group; `synchronize` is the group's barrier (its lock orders the
/// threads' loads and stores).
final class InProcessSharedMemory: SharedMemory {
    private let region: InProcessBytes
    private let group: InProcessCommunicator
    var base: UnsafeMutableRawPointer { region.base }

    init(region: InProcessBytes, group: InProcessCommunicator) {
        self.region = region
        self.group = group
    }

    func synchronize() throws { try group.barrier() }
}
