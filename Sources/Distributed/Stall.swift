import Foundation
import Support

// A collective that some rank never joins (a stopped process, a hung read, a deadlock) would wait forever. Every
// collective therefore has a deadline: after half of it the lowest waiting rank warns, naming the ranks that have
// not arrived; after all of it the collective throws `CollectiveStalled` and the job ends with status 1.
// Knowing WHO did not arrive needs side information: ranks whose wait grows long send each other a small arrival
// notice (point to point, only then, so a normal step sends nothing extra); a rank without a notice is the stalled one.

/// What the ranks are doing when a collective waits; a stall's message names it.
public enum Activity: Equatable, Sendable, CustomStringConvertible {
    /// Reading the config, data and checkpoint, before the first step.
    case startUp
    /// Optimizer step N (1-based).
    case step(Int)
    /// Evaluating the test data after epoch N (1-based).
    case evaluation(epoch: Int)

    public var description: String {
        switch self {
        case .startUp: return "at start-up"
        case let .step(step): return "at step \(step)"
        case let .evaluation(epoch): return "in the evaluation after epoch \(epoch)"
        }
    }
}

/// The deadlines of collectives.
public enum CollectiveTimeout {
    /// Seconds a collective may wait during start-up (loading data, reading a checkpoint; ranks start at different times).
    public static let startUpDefault = 600.0
    /// Seconds a collective may wait once training runs.
    public static let trainingDefault = 300.0

    /// Seconds after the warning before a rank reports whom it heard from: time for the notices to arrive.
    static func grace(timeout: Double) -> Double { min(0.5, timeout / 10) }
}

/// A collective did not complete within its timeout: some ranks never arrived (or stopped inside it). Thrown on the
/// rank that reports it (the lowest that arrived); the others wait for that rank's abort to end them.
public struct CollectiveStalled: ClassifiedError, CustomStringConvertible {
    /// The ranks no arrival notice came from.
    let ranks: [Int]
    let activity: Activity
    let timeoutSeconds: Double

    public var exitStatus: Int32 { 1 }
    public var cause: ExitCause { .stalled }
    /// The lowest stalled rank (nil when the stalled one is the rank that throws it).
    public var rankInvolved: Int? { ranks.first }

    public var description: String {
        // No rank missing: every other rank arrived while this one was stopped (and is now resumed), so it is this one.
        (ranks.isEmpty ? "stalled \(activity) itself" : "\(rankList(ranks)) stalled \(activity)")
            + ": no progress for \(secondsText(timeoutSeconds)); stopping the job"
    }
}

/// "rank 2", "ranks 1, 2".
func rankList(_ ranks: [Int]) -> String {
    (ranks.count == 1 ? "rank " : "ranks ") + ranks.map(String.init).joined(separator: ", ")
}

/// "10 s", "2.5 s".
func secondsText(_ seconds: Double) -> String {
    seconds.rounded() == seconds ? "\(Int(seconds)) s" : String(format: "%.1f s", seconds)
}

/// What the arrival notices said: for every rank, the newest collective (by sequence number, the same on every
/// rank) it was waiting in, and the newest one in which its deadline passed.
struct ArrivalLedger: Equatable {
    let rank: Int
    private(set) var waiting: [Int64]
    private(set) var expired: [Int64]

    init(rank: Int, size: Int) {
        self.rank = rank
        waiting = Array(repeating: 0, count: size)
        expired = Array(repeating: 0, count: size)
    }

    /// Records a notice from `source`: it waits in collective `sequence` (and its deadline there has passed).
    mutating func record(from source: Int, sequence: Int64, expired hasExpired: Bool) {
        guard waiting.indices.contains(source) else { return }
        waiting[source] = max(waiting[source], sequence)
        if hasExpired { expired[source] = max(expired[source], sequence) }
    }

    /// Whether `other` has reached collective `sequence` (this rank, waiting in it, has), or waits in the one before:
    /// a non-blocking collective can complete on some ranks and not on others when a rank stops inside it (its
    /// messages half sent), so ranks that all wait for the stopped one may be one collective apart.
    func arrived(_ other: Int, at sequence: Int64) -> Bool { other == rank || waiting[other] >= oneBefore(sequence) }

    /// The ranks not known to have reached collective `sequence`.
    func missing(at sequence: Int64) -> [Int] { waiting.indices.filter { !arrived($0, at: sequence) } }

    /// The rank that reports a stall of collective `sequence`: the lowest one known to have arrived.
    func reporter(at sequence: Int64) -> Int { waiting.indices.first { arrived($0, at: sequence) } ?? rank }

    /// Whether another rank waiting in collective `sequence` has passed its deadline there.
    func deadlinePassedElsewhere(at sequence: Int64) -> Bool {
        expired.indices.contains { $0 != rank && expired[$0] >= oneBefore(sequence) }
    }

    /// The collective before `sequence`; collectives count from 1, and 0 (no notice yet) never counts.
    private func oneBefore(_ sequence: Int64) -> Int64 { max(1, sequence - 1) }
}

/// The time a waiting rank was not run: gaps between two clock readings of its wait far longer than the nap between
/// them (a CPU quota, other processes on its core, a stop signal), not time spent waiting.
struct HeldTime: Equatable {
    /// A gap longer than its nap by this much is time the rank was not run.
    static let slackNanoseconds: UInt64 = 500_000
    /// Every such gap between two readings, less its nap, added up.
    private(set) var totalNanoseconds: UInt64 = 0
    /// The longest nap overrun: a stretch the rank was not run although it only slept. A gap that spans an MPI call
    /// is not one: the call may itself block (a connection to a host whose link is down).
    private(set) var longestNapOverrunNanoseconds: UInt64 = 0
    private var previous: UInt64 = 0

    var totalSeconds: Double { Double(totalNanoseconds) * 1e-9 }

    /// Takes in a clock reading `now` (ns) that came after a nap of `afterNapMicroseconds` (0 while spinning).
    mutating func read(_ now: UInt64, afterNapMicroseconds nap: UInt32) {
        defer { previous = now }
        let napped = UInt64(nap) * 1000
        guard previous > 0, now > previous + napped + Self.slackNanoseconds else { return }
        totalNanoseconds += now - previous - napped
    }

    /// Takes in one nap of `napMicroseconds` that took `elapsedNanoseconds`.
    mutating func slept(_ elapsedNanoseconds: UInt64, napMicroseconds nap: UInt32) {
        let napped = UInt64(nap) * 1000
        guard elapsedNanoseconds > napped + Self.slackNanoseconds else { return }
        longestNapOverrunNanoseconds = max(longestNapOverrunNanoseconds, elapsedNanoseconds - napped)
    }

    /// Whether the rank was stopped for half of `timeoutSeconds` at a stretch: then it is the one that stalled. One
    /// stretch, not the sum: on a loaded machine many naps end milliseconds late, and in a long wait of a rank that
    /// was never stopped those add up to seconds.
    func stoppedItself(timeoutSeconds: Double) -> Bool {
        Double(longestNapOverrunNanoseconds) * 1e-9 >= timeoutSeconds / 2
    }
}

/// How long a wait spins before it naps, from how much of the time since the last wait this thread was run: a rank
/// that had its core to itself spins long enough to catch a peer a step's jitter behind, with no nap's wake-up
/// added to the collective; a rank held off its CPU (a CPU quota, ranks sharing a core) naps early, since its
/// spinning would spend the quota or take the core from the rank it waits for.
struct WaitSpin {
    /// The spin of a rank that was run all along: past a step's usual jitter between ranks.
    static let longSeconds = 1e-3
    /// The spin of a rank that was held off its CPU, and of the first wait (nothing measured yet).
    static let shortSeconds = 50e-6
    /// The share of the time since the last wait this thread must have run for the long spin.
    static let runShare = 0.9
    /// Wall and thread CPU nanoseconds when the last wait ended (0: no wait yet).
    private var lastWall: UInt64 = 0
    private var lastCPU: UInt64 = 0

    /// The spin of a wait that starts at `wall` ns with this thread's CPU clock at `cpu` ns.
    func seconds(wall: UInt64, cpu: UInt64) -> Double {
        guard lastWall > 0, wall > lastWall, cpu >= lastCPU else { return Self.shortSeconds }
        let ran = Double(cpu - lastCPU) / Double(wall - lastWall)
        return ran >= Self.runShare ? Self.longSeconds : Self.shortSeconds
    }

    /// Takes in the end of a wait at `wall` ns, this thread's CPU clock at `cpu` ns.
    mutating func waitEnded(wall: UInt64, cpu: UInt64) { (lastWall, lastCPU) = (wall, cpu) }

    /// This thread's CPU time in nanoseconds (CLOCK_THREAD_CPUTIME_ID).
    static func threadCPUNanoseconds() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }
}
