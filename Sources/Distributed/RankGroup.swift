import CMPI
import Kernels

/// A group of ranks of the MPI world — the ranks of one node, or one rank of each node — with the collectives the
/// hierarchical gradient reduction needs: blocking and non-blocking sums, a barrier, and shared memory on a node.
/// Every return code is checked; every wait has the world's deadline (a stalled rank ends the job, see Stall.swift).
public final class RankGroup {
    /// This process's index in the group.
    public let rank: Int
    public let size: Int
    let communicator: MPI_Comm
    /// The world the group belongs to: its waits and stall detection.
    unowned let world: MPICommunicator

    init(_ communicator: MPI_Comm, world: MPICommunicator) throws {
        self.communicator = communicator
        self.world = world
        try MPICommunicator.check(MPI_Comm_set_errhandler(communicator, plexus_mpi_errors_return()), "MPI_Comm_set_errhandler")
        var rank: Int32 = 0, size: Int32 = 0
        try MPICommunicator.check(MPI_Comm_rank(communicator, &rank), "MPI_Comm_rank")
        try MPICommunicator.check(MPI_Comm_size(communicator, &size), "MPI_Comm_size")
        self.rank = Int(rank)
        self.size = Int(size)
    }

    /// Waits until every rank of the group arrives.
    func barrier() throws {
        try world.collective("MPI_Ibarrier") { MPI_Ibarrier(communicator, &$0) }
    }

    /// Copies `bytes` from group rank `root` to every rank of the group.
    public func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        precondition(bytes.count <= Int(Int32.max), "broadcast: more than Int32.max bytes")
        try world.collective("MPI_Ibcast") { MPI_Ibcast(base, Int32(bytes.count), plexus_mpi_byte(), Int32(root), communicator, &$0) }
    }

    /// Sums `count` values of `element` at `buffer` across the group, in place.
    public func allreduceSum(_ buffer: UnsafeMutableRawPointer, count: Int, of element: ReducedElement) throws {
        guard count > 0 else { return }
        precondition(count <= Int(Int32.max), "allreduceSum: count above Int32.max")
        let operation = try element.operation()
        try world.collective("MPI_Iallreduce") {
            MPI_Iallreduce(plexus_mpi_in_place(), buffer, Int32(count), element.type, operation, communicator, &$0)
        }
    }
}

/// What a group reduction sums: Float, Int64 (exact) or bfloat16 (each pairwise sum rounded once).
public enum ReducedElement {
    case float, int64, bfloat16

    /// Bytes per element.
    var size: Int {
        switch self {
        case .float: return 4
        case .int64: return 8
        case .bfloat16: return 2
        }
    }

    var type: MPI_Datatype {
        switch self {
        case .float: return plexus_mpi_float()
        case .int64: return plexus_mpi_int64()
        case .bfloat16: return plexus_mpi_uint16()
        }
    }

    func operation() throws -> MPI_Op {
        switch self {
        case .float, .int64: return plexus_mpi_sum()
        case .bfloat16: return try BFloat16Sum.operation()
        }
    }
}

/// MPI has no bfloat16 sum: a user-defined commutative operation over MPI_UINT16_T, created on first use.
enum BFloat16Sum {
    private static var created: MPI_Op?

    static func operation() throws -> MPI_Op {
        if let created { return created }
        let function: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, UnsafeMutablePointer<Int32>?,
                                       UnsafeMutablePointer<MPI_Datatype?>?) -> Void = { input, accumulated, count, _ in
            guard let input, let accumulated, let count else { return }
            addBFloat16(input.assumingMemoryBound(to: UInt16.self), into: accumulated.assumingMemoryBound(to: UInt16.self),
                        count: Int(count.pointee))
        }
        var operation: MPI_Op? = nil
        try MPICommunicator.check(MPI_Op_create(function, 1, &operation), "MPI_Op_create")
        created = operation
        return operation!
    }
}

/// Memory that every rank of a node group maps (MPI-3 `MPI_Win_allocate_shared`): `bytes` at `base`, the same
/// memory on every rank of the group. Writes become visible to the other ranks at `synchronize`.
public final class SharedMemory {
    /// This rank's address of the shared bytes (64-byte aligned).
    public let base: UnsafeMutableRawPointer
    let bytes: Int
    private var window: MPI_Win?
    private let group: RankGroup

    /// Allocates `bytes` shared by the ranks of `group` (which must all run on one node); every rank calls it.
    public init(bytes: Int, group: RankGroup) throws {
        self.bytes = bytes
        self.group = group
        var window: MPI_Win? = plexus_mpi_win_null()
        var local: UnsafeMutableRawPointer?
        // Rank 0 allocates the whole region (one contiguous block, page-aligned by MPI); the others map it.
        try MPICommunicator.check(MPI_Win_allocate_shared(MPI_Aint(group.rank == 0 ? max(bytes, 64) : 0), 1, plexus_mpi_info_null(),
                                                          group.communicator, &local, &window), "MPI_Win_allocate_shared")
        var size: MPI_Aint = 0, unit: Int32 = 0
        var shared: UnsafeMutableRawPointer?
        try MPICommunicator.check(MPI_Win_shared_query(window, 0, &size, &unit, &shared), "MPI_Win_shared_query")
        guard let shared, Int(size) >= bytes else { throw CommunicationError("MPI_Win_shared_query: no shared memory of \(bytes) bytes") }
        // A passive-target epoch for the window's lifetime: MPI_Win_sync then orders loads and stores (MPI-3 unified model).
        try MPICommunicator.check(MPI_Win_lock_all(plexus_mpi_mode_nocheck(), window), "MPI_Win_lock_all")
        self.window = window
        base = shared
    }

    /// A barrier of the group that also makes every rank's writes to the shared memory visible to the others.
    public func synchronize() throws {
        try MPICommunicator.check(MPI_Win_sync(window), "MPI_Win_sync")
        try group.barrier()
        try MPICommunicator.check(MPI_Win_sync(window), "MPI_Win_sync")
    }
}

extension MPICommunicator {
    /// Splits the world by node: `node` holds the ranks that share this node's memory (`MPI_COMM_TYPE_SHARED`),
    /// `crossNode` the ranks of every node with this rank's index within its node. With `sharedMemory` false
    /// every rank is treated as a node of its own (`node` has size 1, `crossNode` is the world).
    public func nodeGroups(sharedMemory: Bool) throws -> (node: RankGroup, crossNode: RankGroup) {
        var node: MPI_Comm? = plexus_mpi_comm_null()
        if sharedMemory {
            try MPICommunicator.check(MPI_Comm_split_type(communicator, plexus_mpi_comm_type_shared(), Int32(rank),
                                                          plexus_mpi_info_null(), &node), "MPI_Comm_split_type")
        } else {
            try MPICommunicator.check(MPI_Comm_split(communicator, Int32(rank), 0, &node), "MPI_Comm_split")
        }
        let nodeGroup = try RankGroup(node!, world: self)
        var cross: MPI_Comm? = plexus_mpi_comm_null()
        try MPICommunicator.check(MPI_Comm_split(communicator, Int32(nodeGroup.rank), Int32(rank), &cross), "MPI_Comm_split")
        return (nodeGroup, try RankGroup(cross!, world: self))
    }
}
