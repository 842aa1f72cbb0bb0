import CMPI
import Foundation
import Support

/// The deadline of every wait of one MPI world and of its groups, and the stall detection behind it (Stall.swift):
/// the count of collectives, the arrival notices heard, the stall once one happened. One per world, shared by its
/// groups, so a wait in a group counts and is watched exactly as one of the world.
final class MPIDeadline {
    /// The world's communicator, rank and size: arrival notices go between world ranks.
    private let world: MPI_Comm
    private let rank: Int
    /// This process's rank in the world (the watchdog names it).
    var worldRank: Int { rank }
    private let size: Int
    var timeoutSeconds = CollectiveTimeout.startUpDefault
    /// The world ranks on other hosts: a stall that heard from none of them means this host is the one cut off.
    var ranksOnOtherHosts: Set<Int> = []
    var activity = Activity.startUp
    /// Seconds waited in `complete` so far (from the first clock reading of each wait, a few polls in), without the
    /// time this rank was held off its CPU meanwhile.
    private(set) var waitedSeconds = 0.0
    /// Collectives started so far: the same count on every rank, so it names one collective across ranks.
    private var sequence: Int64 = 0
    private var ledger: ArrivalLedger
    /// Set once a collective stalled: every later collective throws it at once instead of waiting again.
    private(set) var stall: CollectiveStalled?
    /// An arrival notice's two values (collective sequence, deadline passed). Never freed: sends whose requests were
    /// released may still read it, and a newer notice overwriting an older one only tells more.
    private let notice = UnsafeMutablePointer<Int64>.allocate(capacity: 2)
    /// The tag of arrival notices, the only point-to-point messages of the world communicator.
    private static let noticeTag: Int32 = 7717

    init(world: MPI_Comm, rank: Int, size: Int) {
        self.world = world
        self.rank = rank
        self.size = size
        ledger = ArrivalLedger(rank: rank, size: size)
        plexus_precise_sleeps()
    }

    /// How long a wait polls before it naps between polls (`WaitSpin`: long for a rank that had its core, short for
    /// one held off it, which must not spend a CPU quota waiting).
    private var spin = WaitSpin()
    /// The naps grow from the first to the longest (µs), so a long wait (a slow rank, a checkpoint being written, a
    /// stall) costs next to no CPU, and a short one is not overslept by much.
    static let napMicroseconds: ClosedRange<UInt32> = 1...100

    /// Where one slow wait stands.
    private struct SlowWait {
        var announced = false
        var expiryAnnounced = false
        /// The ranks named in the warning, if this rank printed one.
        var warnedAbout: [Int]?
    }

    /// Polls `progress` (true once the operation is done) within the deadline: every collective of Distributed (of
    /// the world, of a group of its ranks, a ring sum) ends here, in the same order on every rank, so the count of
    /// them names one collective on all ranks. Past its spin (`WaitSpin`) the wait naps between polls. A wait over 10 ms starts listening for arrival notices; at half the
    /// timeout this rank sends its own, then the lowest arrived rank warns; at the timeout it throws
    /// `CollectiveStalled`, and so does every later call.
    func complete(_ call: String, progress: () throws -> Bool) throws {
        if let stall { throw stall }
        sequence += 1
        var polls = 0
        var start: UInt64 = 0
        var held = HeldTime()
        var nap: UInt32 = 0
        var spinSeconds = WaitSpin.shortSeconds
        var wait = SlowWait()
        // A slow wait is also watched from the watchdog's thread, for a call inside it that never returns.
        var watched = false
        defer { if watched { BlockingCallWatchdog.shared.endWaitWatch() } }
        while true {
            if try progress() { break }
            polls &+= 1
            // While spinning the clock is read every 16 polls; a wait of a few µs does nothing else.
            guard nap > 0 || polls & 15 == 0 else { continue }
            let now = DispatchTime.now().uptimeNanoseconds
            if start == 0 {
                start = now
                spinSeconds = spin.seconds(wall: now, cpu: WaitSpin.threadCPUNanoseconds())
            }
            held.read(now, afterNapMicroseconds: nap)
            let waited = Double(now - start) * 1e-9
            if waited >= 0.01 {
                if !watched {
                    watched = true
                    let grace = CollectiveTimeout.grace(timeout: timeoutSeconds)
                    BlockingCallWatchdog.shared.watchWait("the wait of \(call)", rank: rank, seconds: timeoutSeconds + 3 + 2 * grace)
                }
                try watch(&wait, waited: waited, held: held)
            }
            guard waited >= spinSeconds else { continue }
            nap = min(Self.napMicroseconds.upperBound, max(Self.napMicroseconds.lowerBound, nap * 2))
            let beforeNap = DispatchTime.now().uptimeNanoseconds
            usleep(nap)
            held.slept(DispatchTime.now().uptimeNanoseconds - beforeNap, napMicroseconds: nap)
        }
        guard start != 0 else { return }
        let end = DispatchTime.now().uptimeNanoseconds
        // The last stretch too: a rank held off its CPU while it spins often finds the collective done at its next poll.
        held.read(end, afterNapMicroseconds: nap)
        spin.waitEnded(wall: end, cpu: WaitSpin.threadCPUNanoseconds())
        let waited = Double(end - start) * 1e-9
        waitedSeconds += max(0, waited - held.totalSeconds)
        if let ranks = wait.warnedAbout {
            warn("\(rankList(ranks)) arrived \(activity) after \(String(format: "%.1f", waited)) s; continuing")
        }
    }

    /// One look at a slow wait: notices in and out, the warning, the stall. `held`: the time of the wait this rank
    /// was not run (stopped, or held off its CPU).
    private func watch(_ wait: inout SlowWait, waited: Double, held: HeldTime) throws {
        let heard = try receiveNotices()
        // Stopped for half the timeout or more (SIGSTOP, then resumed): this rank is the one that stalled, whatever the
        // notices it has had time to take in say.
        let heldItself = held.stoppedItself(timeoutSeconds: timeoutSeconds)
        let grace = CollectiveTimeout.grace(timeout: timeoutSeconds)
        // Answer another rank's notice at once, so its warning can tell this rank arrived.
        if !wait.announced && (waited >= timeoutSeconds / 2 || heard) {
            wait.announced = true
            try sendNotice(expired: false)
        }
        let reporting = ledger.reporter(at: sequence) == rank
        if waited >= timeoutSeconds / 2 + grace && wait.warnedAbout == nil && reporting && !heldItself {
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
            let missing = ledger.missing(at: sequence)
            let stalled = CollectiveStalled(ranks: heldItself ? [] : missing, activity: activity, timeoutSeconds: timeoutSeconds)
            // No rank on another host answered (those on this one may have): most likely this host is the one cut off,
            // and its launcher daemon with it. Also when this rank was stopped meanwhile and names itself: its
            // MPI_Abort then returns through that daemon, which would be left waiting for a launcher it cannot reach.
            if !ranksOnOtherHosts.isEmpty && ranksOnOtherHosts.isSubset(of: missing) {
                BlockingCallWatchdog.shared.peersSilent = true
            }
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
            try MPICommunicator.check(MPI_Isend(notice, 2, plexus_mpi_int64(), Int32(destination), MPIDeadline.noticeTag,
                                                world, &request), "MPI_Isend")
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
            try MPICommunicator.check(MPI_Iprobe(plexus_mpi_any_source(), MPIDeadline.noticeTag, world, &flag, &status),
                                      "MPI_Iprobe")
            guard flag != 0 else { return heard }
            var message: (Int64, Int64) = (0, 0)
            try withUnsafeMutableBytes(of: &message) {
                try MPICommunicator.check(MPI_Recv($0.baseAddress, 2, plexus_mpi_int64(), status.MPI_SOURCE, MPIDeadline.noticeTag,
                                                   world, plexus_mpi_status_ignore()), "MPI_Recv")
            }
            ledger.record(from: Int(status.MPI_SOURCE), sequence: message.0, expired: message.1 != 0)
            heard = true
        }
    }

    private func warn(_ text: String) { Diagnostics.warning(text) }
}
