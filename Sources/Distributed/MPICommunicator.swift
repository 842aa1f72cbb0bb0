import CMPI
import Foundation
import Support

/// MPI_COMM_WORLD through OpenMPI. The only file that calls MPI; every return code is checked.
///
/// Every collective is started non-blocking and completed by polling (`complete`), so none waits past its deadline
/// (see Stall.swift): only the main thread calls MPI (MPI_THREAD_FUNNELED), so no watchdog thread could.
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int
    public var kind: String { "mpi" }
    public var timeoutSeconds = CollectiveTimeout.startUpDefault
    public var activity = Activity.startUp
    let communicator: MPI_Comm
    private var finalized = false
    /// Collectives started so far: the same count on every rank, so it names one collective across ranks.
    private var sequence: Int64 = 0
    private var ledger: ArrivalLedger
    /// Set once a collective stalled: every later collective throws it at once instead of waiting again.
    private var stall: CollectiveStalled?
    /// An arrival notice's two values (collective sequence, deadline passed). Never freed: sends whose requests were
    /// released may still read it, and a newer notice overwriting an older one only tells more.
    private let notice = UnsafeMutablePointer<Int64>.allocate(capacity: 2)
    /// The tag of arrival notices, the only point-to-point messages plexus sends.
    private static let noticeTag: Int32 = 7717

    /// Whether this process was started by an MPI launcher (mpirun, srun --mpi=pmix) rather than by hand.
    static var launchedByMPI: Bool {
        let environment = ProcessInfo.processInfo.environment
        return ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"].contains { environment[$0] != nil }
    }

    /// Initialises MPI with MPI_THREAD_FUNNELED (only the main thread calls MPI; Dispatch threads compute).
    init() throws {
        // OpenMPI's non-blocking allreduce defaults to a binomial tree for in-place buffers: measured 2x slower than
        // its blocking allreduce on 1-2 MB at 2 ranks; Rabenseifner's reduce-scatter + allgather (3) is as fast
        // (165 vs 167 us for 2.1 MB). A value the user set wins.
        setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "3", 0)
        var provided: Int32 = 0
        try MPICommunicator.check(MPI_Init_thread(nil, nil, plexus_mpi_thread_funneled(), &provided), "MPI_Init_thread")
        communicator = plexus_mpi_comm_world()
        // Errors come back as return codes (checked below) instead of aborting inside the library.
        try MPICommunicator.check(MPI_Comm_set_errhandler(communicator, plexus_mpi_errors_return()), "MPI_Comm_set_errhandler")
        if provided < plexus_mpi_thread_funneled() {
            throw CommunicationError("MPI provides thread level \(provided), below MPI_THREAD_FUNNELED")
        }
        var rank: Int32 = 0, size: Int32 = 0
        try MPICommunicator.check(MPI_Comm_rank(communicator, &rank), "MPI_Comm_rank")
        try MPICommunicator.check(MPI_Comm_size(communicator, &size), "MPI_Comm_size")
        self.rank = Int(rank)
        self.size = Int(size)
        ledger = ArrivalLedger(rank: Int(rank), size: Int(size))
    }

    public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws { try allreduce(buffer, plexus_mpi_float(), plexus_mpi_sum()) }
    public func allreduceSum(_ values: UnsafeMutableBufferPointer<Double>) throws { try allreduce(values, plexus_mpi_double(), plexus_mpi_sum()) }
    public func allreduceSum(_ values: UnsafeMutableBufferPointer<Int64>) throws { try allreduce(values, plexus_mpi_int64(), plexus_mpi_sum()) }
    public func allreduceMax(_ values: UnsafeMutableBufferPointer<Int64>) throws { try allreduce(values, plexus_mpi_int64(), plexus_mpi_max()) }
    public func allreduceMin(_ values: UnsafeMutableBufferPointer<Int64>) throws { try allreduce(values, plexus_mpi_int64(), plexus_mpi_min()) }

    /// In-place allreduce of `values` (MPI type `type`) with `operation`.
    private func allreduce<Element>(_ values: UnsafeMutableBufferPointer<Element>, _ type: MPI_Datatype, _ operation: MPI_Op) throws {
        guard values.count > 0, let base = values.baseAddress else { return }
        let raw = UnsafeMutableRawPointer(base)
        try forEachSlice(count: values.count, elementSize: MemoryLayout<Element>.stride) { offset, count in
            try collective("MPI_Iallreduce") {
                MPI_Iallreduce(plexus_mpi_in_place(), raw + offset, count, type, operation, communicator, &$0)
            }
        }
    }

    public func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        try forEachSlice(count: bytes.count, elementSize: 1) { offset, count in
            try collective("MPI_Ibcast") { MPI_Ibcast(base + offset, count, plexus_mpi_byte(), Int32(root), communicator, &$0) }
        }
    }

    public func barrier() throws {
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

    /// Starts one non-blocking collective (of the world or of a `RankGroup`) with `start` and completes it within
    /// the deadline.
    func collective(_ call: String, _ start: (inout MPI_Request?) -> Int32) throws {
        if let stall { throw stall }
        var request: MPI_Request? = plexus_mpi_request_null()
        try MPICommunicator.check(start(&request), call)
        try complete(call) {
            var done: Int32 = 0
            try MPICommunicator.check(MPI_Test(&request, &done, plexus_mpi_status_ignore()), call)
            return done != 0
        }
    }

    public func abort(status: Int32) -> Never {
        fflush(stdout)
        fflush(stderr)
        _ = MPI_Abort(communicator, status)
        exit(status) // MPI_Abort does not return; this satisfies the type checker if it ever does.
    }

    public func finalize() {
        guard !finalized else { return }
        finalized = true
        _ = MPI_Finalize()
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

// MARK: - Completing a collective within its deadline

extension MPICommunicator {
    /// Where one slow wait stands.
    private struct SlowWait {
        var announced = false
        var expiryAnnounced = false
        /// The ranks named in the warning, if this rank printed one.
        var warnedAbout: [Int]?
    }

    /// Polls `progress` (true once the operation is done) within the deadline: every collective of Distributed (of
    /// the world, of a group of its ranks, a ring sum) ends here, in the same order on every rank, so the count of
    /// them names one collective on all ranks. A wait over 10 ms starts listening for arrival notices; at half the
    /// timeout this rank sends its own, then the lowest arrived rank warns; at the timeout it throws
    /// `CollectiveStalled`, and so does every later call.
    func complete(_ call: String, progress: () throws -> Bool) throws {
        if let stall { throw stall }
        sequence += 1
        var polls = 0
        var start: UInt64 = 0
        var wait = SlowWait()
        while true {
            if try progress() { break }
            polls &+= 1
            // The clock is read every 64 polls; a wait of a few ms (the slowest rank's lag) does nothing else.
            guard polls & 63 == 0 else { continue }
            let now = DispatchTime.now().uptimeNanoseconds
            if start == 0 { start = now }
            let waited = Double(now - start) * 1e-9
            guard waited >= 0.01 else { continue }
            try watch(&wait, waited: waited)
            // A long wait (a checkpoint being written, a stall) need not spin a core at 100%.
            if waited >= 0.05 { usleep(100) }
        }
        if let ranks = wait.warnedAbout {
            let waited = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
            warn("\(rankList(ranks)) arrived \(activity) after \(String(format: "%.1f", waited)) s; continuing")
        }
    }

    /// One look at a slow wait: notices in and out, the warning, the stall.
    private func watch(_ wait: inout SlowWait, waited: Double) throws {
        let heard = try receiveNotices()
        let grace = CollectiveTimeout.grace(timeout: timeoutSeconds)
        // Answer another rank's notice at once, so its warning can tell this rank arrived.
        if !wait.announced && (waited >= timeoutSeconds / 2 || heard) {
            wait.announced = true
            try sendNotice(expired: false)
        }
        let reporting = ledger.reporter(at: sequence) == rank
        if waited >= timeoutSeconds / 2 + grace && wait.warnedAbout == nil && reporting {
            let missing = ledger.missing(at: sequence)
            wait.warnedAbout = missing
            warn("waiting \(secondsText((waited * 10).rounded() / 10)) \(activity) for \(rankList(missing)) (no arrival); "
                 + "the job stops after \(secondsText(timeoutSeconds))")
        }
        if waited >= timeoutSeconds && !wait.expiryAnnounced {
            wait.expiryAnnounced = true
            try sendNotice(expired: true)
        }
        // The reporter stops when its own deadline or another waiting rank's has passed; any other rank waits a
        // little longer for the reporter's abort to end it, and reports the stall itself if none came.
        if reporting ? waited >= timeoutSeconds || ledger.deadlinePassedElsewhere(at: sequence)
                     : waited >= timeoutSeconds + 2 + 2 * grace {
            let stalled = CollectiveStalled(ranks: ledger.missing(at: sequence), activity: activity,
                                            timeoutSeconds: timeoutSeconds)
            stall = stalled
            throw stalled
        }
    }

    /// Tells every other rank that this one waits in the current collective (and whether its deadline passed).
    private func sendNotice(expired: Bool) throws {
        notice[0] = sequence
        notice[1] = expired ? 1 : 0
        for destination in 0..<size where destination != rank {
            var request: MPI_Request? = plexus_mpi_request_null()
            try MPICommunicator.check(MPI_Isend(notice, 2, plexus_mpi_int64(), Int32(destination), MPICommunicator.noticeTag,
                                                communicator, &request), "MPI_Isend")
            // Nobody waits for it: a stopped rank may never receive it.
            try MPICommunicator.check(MPI_Request_free(&request), "MPI_Request_free")
        }
    }

    /// Takes in every arrival notice that has come; true if there was any.
    private func receiveNotices() throws -> Bool {
        var heard = false
        while true {
            var flag: Int32 = 0
            var status = MPI_Status()
            try MPICommunicator.check(MPI_Iprobe(plexus_mpi_any_source(), MPICommunicator.noticeTag, communicator, &flag, &status),
                                      "MPI_Iprobe")
            guard flag != 0 else { return heard }
            var message: (Int64, Int64) = (0, 0)
            try withUnsafeMutableBytes(of: &message) {
                try MPICommunicator.check(MPI_Recv($0.baseAddress, 2, plexus_mpi_int64(), status.MPI_SOURCE, MPICommunicator.noticeTag,
                                                   communicator, plexus_mpi_status_ignore()), "MPI_Recv")
            }
            ledger.record(from: Int(status.MPI_SOURCE), sequence: message.0, expired: message.1 != 0)
            heard = true
        }
    }

    private func warn(_ text: String) { Diagnostics.warning(text) }
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

/// The communicator for this process: MPI under a launcher, otherwise a world of size 1.
public func makeCommunicator() throws -> Communicator {
    MPICommunicator.launchedByMPI ? try MPICommunicator() : LocalCommunicator()
}
