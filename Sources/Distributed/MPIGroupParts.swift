import CMPI
import Kernels

// What an MPI group offers beyond its collectives: the MPI types of reduced elements, the bfloat16 sum, shared
// windows on a node, and the point-to-point messages of a ring sum.

extension ReducedElement {
    var type: MPI_Datatype {
        switch self {
        case .float: return plexus_mpi_float()
        case .double: return plexus_mpi_double()
        case .int64: return plexus_mpi_int64()
        case .bfloat16: return plexus_mpi_uint16()
        }
    }

    func operation() throws -> MPI_Op {
        switch self {
        case .float, .double, .int64: return plexus_mpi_sum()
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

/// Shared memory of a node group through MPI-3 `MPI_Win_allocate_shared`: the same bytes mapped by every rank.
final class MPISharedWindow: SharedMemory {
    let base: UnsafeMutableRawPointer
    private var window: MPI_Win?
    private let group: MPICommunicator

    /// Allocates `bytes` shared by the ranks of `group` (which must all run on one node); every rank calls it.
    init(bytes: Int, group: MPICommunicator) throws {
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

    func synchronize() throws {
        try MPICommunicator.check(MPI_Win_sync(window), "MPI_Win_sync")
        try group.barrier()
        try MPICommunicator.check(MPI_Win_sync(window), "MPI_Win_sync")
    }
}

/// A ring sum's messages over an MPI group: MPI_Irecv and MPI_Isend with the ring's tag, tested with MPI_Testall.
final class MPIRingTransport: RingTransport {
    private let group: MPICommunicator
    private let tag: Int32
    private let requests: UnsafeMutablePointer<MPI_Request?>

    init(group: MPICommunicator, tag: Int) {
        self.group = group
        self.tag = Int32(tag)
        requests = .allocate(capacity: 2)
        requests.initialize(repeating: plexus_mpi_request_null(), count: 2)
    }

    deinit { requests.deallocate() }

    var rank: Int { group.rank }
    var size: Int { group.size }

    func exchange(sending: UnsafeMutableRawPointer, count: Int, to destination: Int, receiving: UnsafeMutableRawPointer,
                  count receivedCount: Int, from source: Int, of element: ReducedElement) throws {
        try MPICommunicator.check(MPI_Irecv(receiving, Int32(receivedCount), element.type, Int32(source), tag, group.communicator,
                                            requests + 1), "MPI_Irecv")
        try MPICommunicator.check(MPI_Isend(sending, Int32(count), element.type, Int32(destination), tag,
                                            group.communicator, requests), "MPI_Isend")
    }

    func exchanged() throws -> Bool {
        var done: Int32 = 0
        try MPICommunicator.check(MPI_Testall(2, requests, &done, plexus_mpi_statuses_ignore()), "MPI_Testall")
        return done != 0
    }

    func complete(_ call: String, progress: () throws -> Bool) throws { try group.deadline.complete(call, progress: progress) }
}
