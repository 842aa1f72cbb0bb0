import CMPI
import Foundation
import Support

/// Ends the job when one of MPI's blocking calls — `MPI_Init`, the node split, the shared window, `MPI_Finalize` —
/// does not return within its deadline. They have no non-blocking form to poll (every other wait goes through
/// `MPIDeadline.complete`), so only a thread of its own can see one hang: it sleeps until the armed deadline and, if
/// the call is still inside, prints one line and aborts the job (MPI_Abort, or the process when MPI is not up, which
/// makes the launcher end the other ranks).
final class BlockingCallWatchdog: @unchecked Sendable {
    /// The one watchdog of this process (its thread starts with the first watched call).
    static let shared = BlockingCallWatchdog()

    /// The call being watched, the one-based number of its arming, and when it expires.
    private struct Watch {
        var call: String
        var rank: Int?
        var seconds: Double
        var deadline: Date
        var number: Int
        /// Set for MPI_Abort: past the deadline this process ends with this status, without MPI.
        var abortStatus: Int32?
        /// Set for a collective's wait: a call inside it that does not return most likely reaches a host it is cut off
        /// from, so this host's launcher daemon is ended too.
        var cutOff = false
    }

    private let condition = NSCondition()
    private var watch: Watch?
    private var armings = 0
    private var started = false
    /// Whether an abort took too long and this process is ending without MPI.
    private(set) var abortExpired = false
    /// Set when a stall heard from no rank on another host: an abort then also ends this host's launcher daemon.
    var peersSilent = false

    /// Runs `body`, a blocking MPI call named `call` on rank `rank` (nil before MPI knows it), under a deadline of
    /// `seconds`; past it the job ends with status 1 and a line naming the call.
    func run<Result>(_ call: String, rank: Int?, seconds: Double, _ body: () throws -> Result) rethrows -> Result {
        arm(Watch(call: call, rank: rank, seconds: seconds, deadline: Date(timeIntervalSinceNow: seconds), number: 0))
        defer { disarm() }
        return try body()
    }

    /// Watches the MPI_Abort about to be called: if this process still runs `seconds` later, the launcher could not
    /// be reached (no peer answers either), so it ends itself with `status`, and its parent with it when that is an
    /// OpenMPI daemon (`orted`), which would otherwise wait for a launcher it can no longer reach.
    func watchAbort(status: Int32, seconds: Double) {
        arm(Watch(call: "MPI_Abort", rank: launcherRank(), seconds: seconds, deadline: Date(timeIntervalSinceNow: seconds),
                  number: 0, abortStatus: status))
    }

    /// Watches a collective's wait that has grown slow: if the main thread is still inside it `seconds` later, stuck
    /// in an MPI call (toward a host whose link is down) that never returns to its own deadline, the job ends, and
    /// this host's launcher daemon with it.
    func watchWait(_ call: String, rank: Int, seconds: Double) {
        arm(Watch(call: call, rank: rank, seconds: seconds, deadline: Date(timeIntervalSinceNow: seconds), number: 0,
                  cutOff: true))
    }

    /// The watched wait ended (or threw).
    func endWaitWatch() { disarm() }

    private func arm(_ next: Watch) {
        condition.lock()
        defer { condition.unlock() }
        armings += 1
        watch = next
        watch?.number = armings
        if !started {
            started = true
            let thread = Thread { [unowned self] in self.guardCalls() }
            thread.name = "plexus-mpi-watchdog"
            thread.start()
        }
        condition.signal()
    }

    private func disarm() {
        condition.lock()
        watch = nil
        condition.signal()
        condition.unlock()
    }

    /// The watchdog thread: waits for an armed call's deadline; one that passes with the same arming ends the job.
    private func guardCalls() {
        condition.lock()
        while true {
            guard let current = watch else {
                condition.wait()
                continue
            }
            if condition.wait(until: current.deadline) { continue }
            guard let still = watch, still.number == current.number else { continue }
            condition.unlock()
            expire(still)
        }
    }

    private func expire(_ watch: Watch) -> Never {
        let who = watch.rank.map { "rank \($0)" } ?? launcherRank().map { "rank \($0)" } ?? "a rank"
        guard let status = watch.abortStatus else {
            if watch.cutOff { peersSilent = true }
            Diagnostics.error("\(who): \(watch.call) did not return within \(secondsText(watch.seconds)) (a rank stopped, "
                              + "or its host unreachable); stopping the job")
            MPICommunicator.abort(status: 1)
        }
        condition.lock()
        abortExpired = true
        condition.unlock()
        Diagnostics.error("\(who): the launcher did not end the job within \(secondsText(watch.seconds)) of the abort "
                          + "(unreachable); ending this rank")
        Self.endLauncherDaemon()
        MPICommunicator.abort(status: status)
    }

    /// Ends this process's parent if it is OpenMPI's per-host daemon: cut off from mpirun, it would wait forever.
    static func endLauncherDaemon() {
        let parent = getppid()
        guard let name = try? String(contentsOfFile: "/proc/\(parent)/comm", encoding: .utf8),
              name.trimmingCharacters(in: .whitespacesAndNewlines) == "orted" else { return }
        kill(parent, SIGKILL)
    }
}
