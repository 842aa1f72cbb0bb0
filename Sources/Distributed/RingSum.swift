import Kernels

/// A non-blocking in-place sum over a group as a ring (reduce-scatter, then allgather): each rank sends and receives
/// 2(N−1)/N of the buffer, both directions at once, in 2(N−1) steps of point-to-point messages that `test` advances
/// from the main thread (MPI_THREAD_FUNNELED) between layers. At 2 ranks the ring's two steps become one: the ranks
/// swap whole buffers and each adds the other's (the same bytes each way, one network latency instead of two, and
/// nothing left for a `test` to post half-way). OpenMPI's MPI_Iallreduce reduces to one rank and broadcasts below 4
/// ranks, twice the bytes on the wire. Created once per group (`Communicator.ringSum`) with its receive buffer:
/// starting it every step allocates nothing. Every chunk is summed in ring order, the same bits on every
/// implementation of the group; at 2 ranks each element is a + b, the bits of MPI_Allreduce.
public final class RingSum {
    private let transport: RingTransport
    private let scratch: UnsafeMutableRawPointer
    private let capacity: Int
    private var buffer: UnsafeMutableRawPointer?
    private var count = 0
    private var element = ReducedElement.float
    /// Steps done of `steps`.
    private var step = 0
    /// 2(N−1) steps around the ring; 1 (a swap) at 2 ranks.
    private var steps: Int { transport.size == 2 ? 1 : 2 * (transport.size - 1) }
    /// Whether a sum was ever started (before that, `wait` is no collective).
    private var started = false
    /// Whether a sum was started and has not completed.
    public private(set) var inFlight = false

    /// A ring for buffers of at most `capacity` values of up to 8 bytes over `transport`'s group.
    init(capacity: Int, transport: RingTransport) {
        self.capacity = capacity
        self.transport = transport
        scratch = .allocate(byteCount: max(8, (capacity + 1) * 8), alignment: 64)
    }

    deinit { scratch.deallocate() }

    /// Starts summing `count` values of `element` (float, bfloat16 or double) at `buffer` over the group.
    public func start(_ buffer: UnsafeMutableRawPointer, count: Int, of element: ReducedElement) throws {
        precondition(!inFlight && count <= capacity && element != .int64, "RingSum: bad start")
        (self.buffer, self.count, self.element) = (buffer, count, element)
        step = 0
        started = true
        inFlight = transport.size > 1 && count > 0
        if inFlight { try post() }
    }

    /// Advances the ring as far as its messages have arrived; true once the sum is complete.
    @discardableResult
    public func test() throws -> Bool {
        while inFlight {
            if try !transport.exchanged() { return false }
            try advance()
        }
        return true
    }

    /// Waits until the sum is complete, within the world's deadline (counted as one collective whether or not
    /// `test` already finished it, so every rank counts the same).
    public func wait() throws {
        guard started else { return }
        try transport.complete("ring sum") { try test() }
    }

    /// Values of chunk `index` (of N) of the buffer.
    private func chunk(_ index: Int) -> Range<Int> {
        let size = transport.size
        return chunkRange(((index % size) + size) % size, of: size, total: count)
    }

    /// Posts step `step`: reduce-scatter steps send the partial sum of one chunk on and receive the next into
    /// scratch; allgather steps pass finished chunks round, received in place; at 2 ranks, the swap into scratch.
    private func post() throws {
        let rank = transport.rank, size = transport.size, width = element.size
        if size == 2 {
            let other = 1 - rank
            try transport.exchange(sending: buffer!, count: count, to: other, receiving: scratch, count: count, from: other,
                                   of: element)
            return
        }
        let reducing = step < size - 1
        let sent = reducing ? chunk(rank - step) : chunk(rank + 1 - (step - size + 1))
        let received = reducing ? chunk(rank - step - 1) : chunk(rank - (step - size + 1))
        let target = reducing ? scratch : buffer! + received.lowerBound * width
        try transport.exchange(sending: buffer! + sent.lowerBound * width, count: sent.count, to: (rank + 1) % size,
                               receiving: target, count: received.count, from: (rank + size - 1) % size, of: element)
    }

    /// The posted step's messages have arrived: add a received partial sum, then post the next step or finish.
    private func advance() throws {
        let size = transport.size
        if step < size - 1 {
            let received = size == 2 ? 0..<count : chunk(transport.rank - step - 1)
            switch element {
            case .float:
                let own = buffer!.assumingMemoryBound(to: Float.self) + received.lowerBound
                addProduct(scratch.assumingMemoryBound(to: Float.self), scaledBy: 1, to: own, count: received.count)
            case .bfloat16:
                let own = buffer!.assumingMemoryBound(to: UInt16.self) + received.lowerBound
                addBFloat16(scratch.assumingMemoryBound(to: UInt16.self), into: own, count: received.count)
            case .double:
                let own = buffer!.assumingMemoryBound(to: Double.self) + received.lowerBound
                let other = scratch.assumingMemoryBound(to: Double.self)
                for i in 0..<received.count { own[i] += other[i] }
            case .int64:
                preconditionFailure("RingSum sums floating point")
            }
        }
        step += 1
        if step == steps {
            inFlight = false
        } else {
            try post()
        }
    }
}

/// What a ring sum needs from its group: one message to the next rank and one from the previous at a time, and a
/// wait under the world's deadline. Each ring has its own (its messages carry the ring's tag).
protocol RingTransport: AnyObject {
    /// This rank's index in the group.
    var rank: Int { get }
    /// Ranks in the group.
    var size: Int { get }
    /// Starts sending `count` values of `element` at `sending` to group rank `destination` and receiving
    /// `receivedCount` values from `source` into `receiving`; neither buffer may be touched until `exchanged`.
    func exchange(sending: UnsafeMutableRawPointer, count: Int, to destination: Int, receiving: UnsafeMutableRawPointer,
                  count receivedCount: Int, from source: Int, of element: ReducedElement) throws
    /// Whether both messages of the last `exchange` are done (never waits).
    func exchanged() throws -> Bool
    /// Polls `progress` (true once done) within the world's deadline, counted as one collective of the world.
    func complete(_ call: String, progress: () throws -> Bool) throws
}
