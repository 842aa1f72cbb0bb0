import CMPI
import Foundation
import Support

/// MPI_COMM_WORLD through OpenMPI, or a group of its ranks (`nodeGroups`). Every return code is checked.
///
/// Every collective is started non-blocking and completed by polling (`MPIDeadline.complete`), so none waits past
/// its deadline (see Stall.swift): only the main thread calls MPI (MPI_THREAD_FUNNELED), so no watchdog thread could.
final class MPICommunicator: Communicator {
    let rank: Int
    let size: Int
    var kind: String { "mpi" }
    var timeoutSeconds: Double {
        get { deadline.timeoutSeconds }
        set { deadline.timeoutSeconds = newValue }
    }
    var activity: Activity {
        get { deadline.activity }
        set { deadline.activity = newValue }
    }
    var waitedSeconds: Double { deadline.waitedSeconds }
    let communicator: MPI_Comm
    /// The world's deadline, shared with its groups.
    let deadline: MPIDeadline
    private let isWorld: Bool
    private var finalized = false

    /// Whether this process was started by an MPI launcher (mpirun, srun --mpi=pmix) rather than by hand.
    static var launchedByMPI: Bool {
        let environment = ProcessInfo.processInfo.environment
        return ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"].contains { environment[$0] != nil }
    }

    /// Initialises MPI with MPI_THREAD_FUNNELED (only the main thread calls MPI; Dispatch threads compute); the job
    /// ends if MPI_Init has not returned within `startUpTimeoutSeconds` (a rank stopped before or inside it).
    init(startUpTimeoutSeconds: Double = CollectiveTimeout.startUpDefault) throws {
        // OpenMPI's non-blocking allreduce defaults to a binomial tree for in-place buffers: measured 2x slower than
        // its blocking allreduce on 1-2 MB at 2 ranks; Rabenseifner's reduce-scatter + allgather (3) is as fast
        // (165 vs 167 us for 2.1 MB). A value the user set wins.
        setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "3", 0)
        var provided: Int32 = 0
        let code = BlockingCallWatchdog.shared.run("MPI_Init", rank: nil, seconds: startUpTimeoutSeconds) {
            MPI_Init_thread(nil, nil, plexus_mpi_thread_funneled(), &provided)
        }
        try MPICommunicator.check(code, "MPI_Init_thread")
        communicator = plexus_mpi_comm_world()
        // Errors come back as return codes (checked below) instead of aborting inside the library.
        try MPICommunicator.check(MPI_Comm_set_errhandler(communicator, plexus_mpi_errors_return()), "MPI_Comm_set_errhandler")
        if provided < plexus_mpi_thread_funneled() {
            throw CommunicationError("MPI provides thread level \(provided), below MPI_THREAD_FUNNELED")
        }
        (rank, size) = try MPICommunicator.rankAndSize(communicator)
        deadline = MPIDeadline(world: communicator, rank: rank, size: size)
        deadline.timeoutSeconds = startUpTimeoutSeconds
        isWorld = true
        // A world of one has no other host (and needs no collective to know it).
        if size > 1 { deadline.ranksOnOtherHosts = try ranksOnOtherHosts() }
    }

    /// The world ranks on hosts other than this one (by MPI_COMM_TYPE_SHARED, as the launcher placed them).
    private func ranksOnOtherHosts() throws -> Set<Int> {
        var node: MPI_Comm? = try splitByNode()
        defer { _ = MPI_Comm_free(&node) }
        var nodeGroup: MPI_Group?, worldGroup: MPI_Group?
        try MPICommunicator.check(MPI_Comm_group(node, &nodeGroup), "MPI_Comm_group")
        defer { _ = MPI_Group_free(&nodeGroup) }
        try MPICommunicator.check(MPI_Comm_group(communicator, &worldGroup), "MPI_Comm_group")
        defer { _ = MPI_Group_free(&worldGroup) }
        let (_, nodeSize) = try MPICommunicator.rankAndSize(node!)
        let nodeRanks = Array(0..<Int32(nodeSize))
        var worldRanks = [Int32](repeating: 0, count: nodeSize)
        try MPICommunicator.check(MPI_Group_translate_ranks(nodeGroup, Int32(nodeSize), nodeRanks, worldGroup, &worldRanks),
                                  "MPI_Group_translate_ranks")
        return Set(0..<size).subtracting(worldRanks.map(Int.init))
    }

    /// A group of the world's ranks (from MPI_Comm_split), waiting under the world's `deadline`.
    private init(group: MPI_Comm, deadline: MPIDeadline) throws {
        communicator = group
        self.deadline = deadline
        isWorld = false
        try MPICommunicator.check(MPI_Comm_set_errhandler(communicator, plexus_mpi_errors_return()), "MPI_Comm_set_errhandler")
        (rank, size) = try MPICommunicator.rankAndSize(communicator)
    }

    private static func rankAndSize(_ communicator: MPI_Comm) throws -> (Int, Int) {
        var rank: Int32 = 0, size: Int32 = 0
        try MPICommunicator.check(MPI_Comm_rank(communicator, &rank), "MPI_Comm_rank")
        try MPICommunicator.check(MPI_Comm_size(communicator, &size), "MPI_Comm_size")
        return (Int(rank), Int(size))
    }

    func allreduceSum(_ values: UnsafeMutableRawPointer, count: Int, of element: ReducedElement) throws {
        try allreduce(values, count: count, elementSize: element.size, element.type, try element.operation())
    }
    func allreduceMax(_ values: UnsafeMutableBufferPointer<Int64>) throws { try allreduce(values, plexus_mpi_max()) }
    func allreduceMin(_ values: UnsafeMutableBufferPointer<Int64>) throws { try allreduce(values, plexus_mpi_min()) }

    private func allreduce(_ values: UnsafeMutableBufferPointer<Int64>, _ operation: MPI_Op) throws {
        guard let base = values.baseAddress else { return }
        try allreduce(base, count: values.count, elementSize: 8, plexus_mpi_int64(), operation)
    }

    /// In-place allreduce of `count` values (MPI type `type`) at `values` with `operation`.
    private func allreduce(_ values: UnsafeMutableRawPointer, count: Int, elementSize: Int, _ type: MPI_Datatype,
                           _ operation: MPI_Op) throws {
        guard count > 0 else { return }
        try forEachSlice(count: count, elementSize: elementSize) { offset, count in
            try collective("MPI_Iallreduce") {
                MPI_Iallreduce(plexus_mpi_in_place(), values + offset, count, type, operation, communicator, &$0)
            }
        }
    }

    func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        try forEachSlice(count: bytes.count, elementSize: 1) { offset, count in
            try collective("MPI_Ibcast") { MPI_Ibcast(base + offset, count, plexus_mpi_byte(), Int32(root), communicator, &$0) }
        }
    }

    func barrier() throws {
        try collective("MPI_Ibarrier") { MPI_Ibarrier(communicator, &$0) }
    }

    /// Calls `body(byteOffset, count)` for slices of at most Int32.max elements (MPI counts are Int32).
    private func forEachSlice(count: Int, elementSize: Int, _ body: (Int, Int32) throws -> Void) throws {
        var offset = 0
        while offset < count {
            let slice = min(count - offset, Int(Int32.max))
            try body(offset * elementSize, Int32(slice))
            offset += slice
        }
    }

    /// Starts one non-blocking collective with `start` and completes it within the world's deadline.
    private func collective(_ call: String, _ start: (inout MPI_Request?) -> Int32) throws {
        if let stall = deadline.stall { throw stall }
        var request: MPI_Request? = plexus_mpi_request_null()
        try MPICommunicator.check(start(&request), call)
        try deadline.complete(call) {
            var done: Int32 = 0
            try MPICommunicator.check(MPI_Test(&request, &done, plexus_mpi_status_ignore()), call)
            return done != 0
        }
    }

    /// Splits by `MPI_COMM_TYPE_SHARED` (the ranks of one node), then by the index within the node.
    func nodeGroups(sharedMemory: Bool) throws -> (node: Communicator, crossNode: Communicator) {
        var node: MPI_Comm? = plexus_mpi_comm_null()
        if sharedMemory {
            node = try splitByNode()
        } else {
            try blocking("MPI_Comm_split") { MPI_Comm_split(communicator, Int32(rank), 0, &node) }
        }
        let nodeGroup = try MPICommunicator(group: node!, deadline: deadline)
        var cross: MPI_Comm? = plexus_mpi_comm_null()
        try blocking("MPI_Comm_split") { MPI_Comm_split(communicator, Int32(nodeGroup.rank), Int32(rank), &cross) }
        return (nodeGroup, try MPICommunicator(group: cross!, deadline: deadline))
    }

    /// The ranks of this group on this rank's node (MPI_COMM_TYPE_SHARED), keyed by this group's rank.
    private func splitByNode() throws -> MPI_Comm? {
        var node: MPI_Comm? = plexus_mpi_comm_null()
        try blocking("MPI_Comm_split_type") {
            MPI_Comm_split_type(communicator, plexus_mpi_comm_type_shared(), Int32(rank), plexus_mpi_info_null(), &node)
        }
        return node
    }

    /// Runs `call`, a blocking collective of this group (MPI has no non-blocking form of it), after a barrier that
    /// names a rank that never comes (a stall like any other) and under the watchdog for one that stops inside it.
    func blocking(_ name: String, _ call: () -> Int32) throws {
        try barrier()
        let code = BlockingCallWatchdog.shared.run(name, rank: deadline.worldRank, seconds: timeoutSeconds, call)
        try MPICommunicator.check(code, name)
    }

    func sharedMemory(bytes: Int) throws -> SharedMemory { try MPISharedWindow(bytes: bytes, group: self) }

    func ringSum(capacity: Int, tag: Int) -> RingSum {
        RingSum(capacity: capacity, transport: MPIRingTransport(group: self, tag: tag))
    }

    func abort(status: Int32) -> Never { MPICommunicator.abort(status: status) }

    /// Ends every rank of the job: MPI_Abort once MPI is up (from any thread: the watchdog's too), else this process,
    /// which makes the launcher end the others. A launcher that cannot be reached (this host's link cut) never ends
    /// the process: after `abortSeconds` the watchdog ends it, and the launcher's daemon that lost its job with it;
    /// when no rank on another host answered in the stall, this host's daemon is ended at once (it cannot reach mpirun).
    static func abort(status: Int32) -> Never {
        fflush(stdout)
        fflush(stderr)
        var initialized: Int32 = 0, finalized: Int32 = 0
        _ = MPI_Initialized(&initialized)
        _ = MPI_Finalized(&finalized)
        if initialized != 0 && finalized == 0 && !BlockingCallWatchdog.shared.abortExpired {
            if BlockingCallWatchdog.shared.peersSilent { BlockingCallWatchdog.endLauncherDaemon() }
            BlockingCallWatchdog.shared.watchAbort(status: status, seconds: abortSeconds)
            _ = MPI_Abort(plexus_mpi_comm_world(), status)
        }
        exit(status) // MPI_Abort does not return; this satisfies the type checker if it ever does.
    }

    /// Seconds MPI_Abort may take before this rank ends itself.
    static let abortSeconds = 5.0

    /// Ends MPI at a normal exit (after the caller's barrier); a rank that stops inside MPI_Finalize ends the job
    /// after the training timeout.
    func finalize() {
        guard isWorld && !finalized else { return }
        finalized = true
        _ = BlockingCallWatchdog.shared.run("MPI_Finalize", rank: rank, seconds: timeoutSeconds) { MPI_Finalize() }
    }

    /// Throws with MPI's own text for a failed call.
    static func check(_ code: Int32, _ call: String) throws {
        guard code != plexus_mpi_success() else { return }
        var text = [CChar](repeating: 0, count: Int(plexus_mpi_max_error_string()) + 1)
        var length: Int32 = 0
        _ = MPI_Error_string(code, &text, &length)
        throw CommunicationError("\(call) failed: \(String(cString: text))")
    }
}

/// The rank an MPI launcher gave this process, from its environment (before MPI starts); nil when not launched by one.
public func launcherRank() -> Int? {
    let environment = ProcessInfo.processInfo.environment
    return ["OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"].lazy.compactMap { environment[$0].flatMap { Int($0) } }.first
}

/// The MPI library: the one whose headers the build used, and the one loaded at run time (they may differ).
public enum MPILibrary {
    /// The library and version of the headers this build was compiled against, e.g. `Open MPI 4.1.4 (MPI 3.1)`.
    public static var builtAgainst: String { String(cString: plexus_mpi_header_version()) }

    /// The first line of what the loaded library says it is (MPI_Get_library_version, callable before MPI starts).
    public static var loaded: String {
        var buffer = [CChar](repeating: 0, count: Int(MPI_MAX_LIBRARY_VERSION_STRING) + 1)
        var length: Int32 = 0
        guard MPI_Get_library_version(&buffer, &length) == plexus_mpi_success() else { return "unknown" }
        let text = String(decoding: buffer.prefix(Int(length)).prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return text.split(whereSeparator: \.isNewline).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown"
    }
}
