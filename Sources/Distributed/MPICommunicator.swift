import CMPI
import Foundation

/// MPI_COMM_WORLD through OpenMPI. The only file that calls MPI; every return code is checked.
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int
    public var kind: String { "mpi" }
    let communicator: MPI_Comm
    private var finalized = false

    /// Whether this process was started by an MPI launcher (mpirun, srun --mpi=pmix) rather than by hand.
    public static var launchedByMPI: Bool {
        let environment = ProcessInfo.processInfo.environment
        return ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"].contains { environment[$0] != nil }
    }

    /// Initialises MPI with MPI_THREAD_FUNNELED (only the main thread calls MPI; Dispatch threads compute).
    public init() throws {
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
    }

    public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws { try allreduce(buffer, plexus_mpi_float(), plexus_mpi_sum()) }
    public func allreduceSum(_ values: UnsafeMutableBufferPointer<Double>) throws { try allreduce(values, plexus_mpi_double(), plexus_mpi_sum()) }
    public func allreduceSum(_ values: UnsafeMutableBufferPointer<Int64>) throws { try allreduce(values, plexus_mpi_int64(), plexus_mpi_sum()) }
    public func allreduceMax(_ values: UnsafeMutableBufferPointer<Int64>) throws { try allreduce(values, plexus_mpi_int64(), plexus_mpi_max()) }
    public func allreduceMin(_ values: UnsafeMutableBufferPointer<Int64>) throws { try allreduce(values, plexus_mpi_int64(), plexus_mpi_min()) }

    /// In-place MPI_Allreduce of `values` (MPI type `type`) with `operation`.
    private func allreduce<Element>(_ values: UnsafeMutableBufferPointer<Element>, _ type: MPI_Datatype, _ operation: MPI_Op) throws {
        try allreduce(UnsafeMutableRawPointer(values.baseAddress), count: values.count, type: type, operation: operation)
    }

    private func allreduce(_ buffer: UnsafeMutableRawPointer?, count: Int, type: MPI_Datatype, operation: MPI_Op) throws {
        guard count > 0, let buffer else { return }
        // MPI counts are Int32: large buffers go in slices.
        let elementSize = try typeSize(type)
        var offset = 0
        while offset < count {
            let slice = min(count - offset, Int(Int32.max))
            try MPICommunicator.check(MPI_Allreduce(plexus_mpi_in_place(), buffer + offset * elementSize, Int32(slice),
                                                    type, operation, communicator), "MPI_Allreduce")
            offset += slice
        }
    }

    private func typeSize(_ type: MPI_Datatype) throws -> Int {
        var size: Int32 = 0
        try MPICommunicator.check(MPI_Type_size(type, &size), "MPI_Type_size")
        return Int(size)
    }

    public func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        var offset = 0
        while offset < bytes.count {
            let slice = min(bytes.count - offset, Int(Int32.max))
            try MPICommunicator.check(MPI_Bcast(base + offset, Int32(slice), plexus_mpi_byte(), Int32(root), communicator),
                                      "MPI_Bcast")
            offset += slice
        }
    }

    public func barrier() throws {
        try MPICommunicator.check(MPI_Barrier(communicator), "MPI_Barrier")
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

/// The communicator for this process: MPI under a launcher, otherwise a world of size 1.
public func makeCommunicator() throws -> Communicator {
    MPICommunicator.launchedByMPI ? try MPICommunicator() : LocalCommunicator()
}
