import CMPI
import Kernels

/// A non-blocking in-place sum over a group as a ring (reduce-scatter, then allgather): each rank sends and receives
/// 2(N−1)/N of the buffer, both directions at once, in 2(N−1) steps of point-to-point messages that `test` advances
/// from the main thread (MPI_THREAD_FUNNELED) between layers. OpenMPI's MPI_Iallreduce reduces to one rank and
/// broadcasts below 4 ranks, twice the bytes on the wire. Created once with its receive buffer: starting it every
/// step allocates nothing. At 2 ranks each element is a + b, the bits of MPI_Allreduce.
public final class RingSum {
    private let requests: UnsafeMutablePointer<MPI_Request?>
    private let scratch: UnsafeMutableRawPointer
    private let capacity: Int
    private let tag: Int32
    private var buffer: UnsafeMutableRawPointer?
    private var count = 0
    private var element = ReducedElement.float
    private var group: RankGroup?
    /// Steps done of 2(N−1); a step's messages are in flight while `posted`.
    private var step = 0
    private var posted = false
    /// Whether a sum was started and has not completed.
    public private(set) var inFlight = false

    /// A ring for buffers of at most `capacity` values of up to 8 bytes; `tag` keeps concurrent rings apart.
    public init(capacity: Int, tag: Int) {
        self.capacity = capacity
        self.tag = Int32(tag)
        requests = .allocate(capacity: 2)
        requests.initialize(repeating: plexus_mpi_request_null(), count: 2)
        scratch = .allocate(byteCount: max(8, (capacity + 1) * 8), alignment: 64)
    }

    deinit {
        requests.deallocate()
        scratch.deallocate()
    }

    /// Starts summing `count` values of `element` (float or bfloat16) at `buffer` over `group`.
    public func start(_ buffer: UnsafeMutableRawPointer, count: Int, of element: ReducedElement, over group: RankGroup) throws {
        precondition(!inFlight && count <= capacity && element != .int64, "RingSum: bad start")
        (self.buffer, self.count, self.element, self.group) = (buffer, count, element, group)
        step = 0
        inFlight = group.size > 1 && count > 0
        if inFlight { try post() }
    }

    /// Advances the ring as far as its messages have arrived; true once the sum is complete.
    @discardableResult
    public func test() throws -> Bool {
        while inFlight {
            var done: Int32 = 0
            try MPICommunicator.check(MPI_Testall(2, requests, &done, plexus_mpi_statuses_ignore()), "MPI_Testall")
            if done == 0 { return false }
            try advance()
        }
        return true
    }

    /// Waits until the sum is complete, within the world's deadline (counted as one collective whether or not
    /// `test` already finished it, so every rank counts the same).
    public func wait() throws {
        guard let group else { return }
        try group.world.complete("ring sum") { try test() }
    }

    /// Values of chunk `index` (of N) of the buffer.
    private func chunk(_ index: Int) -> Range<Int> {
        let size = group!.size
        return chunkRange(((index % size) + size) % size, of: size, total: count)
    }

    /// Posts step `step`: reduce-scatter steps send the partial sum of one chunk on and receive the next into
    /// scratch; allgather steps pass finished chunks round, received in place.
    private func post() throws {
        let group = self.group!, rank = group.rank, size = group.size, width = element.size
        let next = Int32((rank + 1) % size), previous = Int32((rank + size - 1) % size)
        let reducing = step < size - 1
        let sent = reducing ? chunk(rank - step) : chunk(rank + 1 - (step - size + 1))
        let received = reducing ? chunk(rank - step - 1) : chunk(rank - (step - size + 1))
        let target = reducing ? scratch : buffer! + received.lowerBound * width
        try MPICommunicator.check(MPI_Irecv(target, Int32(received.count), element.type, previous, tag, group.communicator,
                                            requests + 1), "MPI_Irecv")
        try MPICommunicator.check(MPI_Isend(buffer! + sent.lowerBound * width, Int32(sent.count), element.type, next, tag,
                                            group.communicator, requests), "MPI_Isend")
        posted = true
    }

    /// The posted step's messages have arrived: add a received partial sum, then post the next step or finish.
    private func advance() throws {
        let size = group!.size
        if step < size - 1 {
            let received = chunk(group!.rank - step - 1)
            switch element {
            case .float:
                let own = buffer!.assumingMemoryBound(to: Float.self) + received.lowerBound
                addProduct(scratch.assumingMemoryBound(to: Float.self), scaledBy: 1, to: own, count: received.count)
            case .bfloat16:
                let own = buffer!.assumingMemoryBound(to: UInt16.self) + received.lowerBound
                addBFloat16(scratch.assumingMemoryBound(to: UInt16.self), into: own, count: received.count)
            case .int64:
                preconditionFailure("RingSum sums floats")
            }
        }
        posted = false
        step += 1
        if step == 2 * (size - 1) {
            inFlight = false
        } else {
            try post()
        }
    }
}
