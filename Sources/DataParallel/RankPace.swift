import Dispatch
import Distributed
import Foundation
import Support

/// Each rank's compute time per step (its time from the step's start until it arrives at the reduction), carried to
/// every rank by the step's agreement allreduce, and the judgement made of it: a rank persistently slower than the
/// median of the others over the last `window` steps is named by rank 0, at most once every `noticeSeconds`.
///
/// The step calls it (`stepBegan`, `computeEnded`, then the agreement fills `record`); it never communicates itself
/// after `gathering` has learnt the ranks' host names.
public final class RankPace {
    /// What the last `window` steps show: the slowest rank, how much slower it computes than the others' median, and
    /// the share of each step the others spend waiting for it.
    public struct Figures: Equatable, Sendable {
        public let slowestRank: Int
        public let ratio: Double
        public let waitFraction: Double
    }

    /// Steps judged together.
    public static let window = 100
    /// A rank computing this many times the others' median is named.
    static let threshold = 1.5
    /// Seconds between two lines naming a slow rank.
    static let noticeSeconds = 60.0

    let rank: Int
    /// Ranks of the world: the agreement carries one compute time for each.
    public let size: Int
    /// Each rank's host name, for the line that names a slow rank.
    let hosts: [String]
    /// The last `window` steps' compute times, `size` per step, oldest overwritten first.
    private var computeSeconds: [Double]
    /// Rank 0's wall time of the same steps (start to agreement).
    private var stepSeconds: [Double]
    private var recorded = 0
    private var stepStart: UInt64 = 0
    /// When the first step since the last `record` began (nil before it).
    private var roundStart: UInt64?
    /// This rank's compute time in the steps since the last `record` (one step when every step agrees).
    private(set) var localComputeSeconds = 0.0
    /// The steps `localComputeSeconds` sums.
    private var pendingSteps = 0
    private var lastNotice: UInt64?

    /// A pace of `size` ranks, this one `rank`, on hosts `hosts`.
    init(rank: Int, size: Int, hosts: [String]) {
        (self.rank, self.size, self.hosts) = (rank, size, hosts)
        computeSeconds = Array(repeating: 0, count: size * Self.window)
        stepSeconds = Array(repeating: 0, count: Self.window)
    }

    /// The pace of `communicator`'s ranks (nil for a world of one); every rank calls it: one allreduce of host names.
    public static func gathering(_ communicator: Communicator) throws -> RankPace? {
        guard communicator.size > 1 else { return nil }
        let hosts = try gatherNames(ProcessInfo.processInfo.hostName, communicator: communicator)
        return RankPace(rank: communicator.rank, size: communicator.size, hosts: hosts)
    }

    /// Every rank's `name` (its first `slot` bytes), by one exact Int64 sum in which each rank fills its own slot.
    private static func gatherNames(_ name: String, communicator: Communicator, slot: Int = 64) throws -> [String] {
        var words = [Int64](repeating: 0, count: communicator.size * slot / 8)
        words.withUnsafeMutableBytes { bytes in
            for (index, byte) in name.utf8.prefix(slot).enumerated() { bytes[communicator.rank * slot + index] = byte }
        }
        try words.withUnsafeMutableBufferPointer { try communicator.allreduceSum($0) }
        return words.withUnsafeBytes { bytes in
            (0..<communicator.size).map { rank in
                String(decoding: bytes[(rank * slot)..<((rank + 1) * slot)].prefix { $0 != 0 }, as: UTF8.self)
            }
        }
    }

    /// The step has started on this rank.
    func stepBegan() {
        stepStart = DispatchTime.now().uptimeNanoseconds
        if roundStart == nil { roundStart = stepStart }
    }

    /// This rank has computed its gradients and arrives at the reduction.
    func computeEnded() {
        localComputeSeconds += Self.seconds(since: stepStart)
        pendingSteps += 1
    }

    /// After an agreement over all ranks: every rank's compute time of the steps since the last one (`times`, one
    /// per rank), recorded as their mean step; rank 0 judges them every tenth record once a window is full. Between
    /// rounds of periodic synchronization a record is a round.
    func record(_ times: UnsafeBufferPointer<Double>) {
        let slot = recorded % Self.window, steps = Double(max(1, pendingSteps))
        for index in 0..<size { computeSeconds[slot * size + index] = times[index] / steps }
        stepSeconds[slot] = Self.seconds(since: roundStart ?? stepStart) / steps
        (localComputeSeconds, pendingSteps, roundStart) = (0, 0, nil)
        recorded += 1
        guard rank == 0, recorded >= Self.window, recorded % 10 == 0, let figures, figures.ratio > Self.threshold else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        if let lastNotice, Double(now - lastNotice) * 1e-9 < Self.noticeSeconds { return }
        lastNotice = now
        Diagnostics.note(Self.line(figures, host: hosts[figures.slowestRank]))
    }

    /// The figures of the steps recorded so far (at most the last `window`); nil before the first. Each rank's time
    /// is its mean step: a rank held by a CPU quota loses whole quota periods in some steps only, which a median
    /// would not see.
    public var figures: Figures? {
        let steps = min(recorded, Self.window)
        guard steps > 0 else { return nil }
        let typical = (0..<size).map { index in (0..<steps).reduce(0.0) { $0 + computeSeconds[$1 * size + index] } / Double(steps) }
        return Self.judge(typical: typical, stepSeconds: stepSeconds.prefix(steps).reduce(0, +) / Double(steps))
    }

    /// The slowest of `typical` (each rank's mean compute seconds per step) against the median of the others,
    /// and the share of `stepSeconds` (a typical step's wall time, start to agreement: the same on every rank, the
    /// reduction joins them) the others' median does not compute, but waits.
    static func judge(typical: [Double], stepSeconds: Double) -> Figures {
        let slowest = typical.indices.max { typical[$0] < typical[$1] } ?? 0
        let others = typical.enumerated().filter { $0.offset != slowest }.map(\.element)
        let median = others.isEmpty ? typical[slowest] : Self.median(others)
        let ratio = median > 0 ? typical[slowest] / median : 1
        let waiting = stepSeconds > 0 ? min(1, max(0, 1 - median / stepSeconds)) : 0
        return Figures(slowestRank: slowest, ratio: ratio, waitFraction: waiting)
    }

    private static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted(), middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    /// "rank 1 (host b) computes 2.9× slower than the others' median; the job runs at its pace, 58% of each step waiting"
    static func line(_ figures: Figures, host: String) -> String {
        "rank \(figures.slowestRank) (host \(host)) computes " + String(format: "%.1f", figures.ratio)
            + "× slower than the others' median; the job runs at its pace, "
            + "\(Int((figures.waitFraction * 100).rounded()))% of each step waiting"
    }

    private static func seconds(since start: UInt64) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
    }
}
