import Dispatch
import Distributed
import Foundation
import Support

/// Each rank's busy time per step (the step's wall time on that rank less what it waited in collectives for the
/// others; time a CPU quota held it off its core counts as busy, wherever in the step it falls), carried to every
/// rank by the step's agreement allreduce, and the judgement made of it: a rank persistently slower than the median
/// of the others over the last `window` steps is named by rank 0, at most once every `noticeSeconds`. The same busy
/// times move the batch shares under `distributed.balance` (`ShareBalance`).
///
/// The step calls it (`stepBegan`, `stepEnded`; the agreement takes `busySinceLastAgreement` and fills `record`); it
/// never communicates itself after `gathering` has learnt the ranks' host names. What runs between steps (an
/// evaluation, a checkpoint written by rank 0) is not counted.
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
    /// Ranks of the world: the agreement carries one busy time for each.
    public let size: Int
    /// Each rank's host name, for the line that names a slow rank.
    let hosts: [String]
    /// Whose waits are not counted as busy.
    private let communicator: Communicator
    /// The last `window` records' busy times per step, `size` per record, oldest overwritten first.
    private var busySeconds: [Double]
    /// This rank's wall time per step of the same records.
    private var stepSeconds: [Double]
    private var recorded = 0
    /// The clock and the seconds waited when the counted time last resumed (nil between steps).
    private var mark: (nanoseconds: UInt64, waited: Double)?
    /// This rank's wall and busy time counted since the last agreement over all ranks, and the steps begun in it.
    private var pending = (wall: 0.0, busy: 0.0, steps: 0)
    private var lastNotice: UInt64?

    /// The pace of `communicator`'s ranks, on hosts `hosts` (one per rank).
    init(communicator: Communicator, hosts: [String]) {
        (rank, size, self.hosts, self.communicator) = (communicator.rank, communicator.size, hosts, communicator)
        busySeconds = Array(repeating: 0, count: size * Self.window)
        stepSeconds = Array(repeating: 0, count: Self.window)
    }

    /// The pace of `communicator`'s ranks (nil for a world of one); every rank calls it: one allreduce of host names.
    public static func gathering(_ communicator: Communicator) throws -> RankPace? {
        guard communicator.size > 1 else { return nil }
        let hosts = try gatherNames(ProcessInfo.processInfo.hostName, communicator: communicator)
        return RankPace(communicator: communicator, hosts: hosts)
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
        pending.steps += 1
        mark = now()
    }

    /// The step has ended on this rank: the time until the next `stepBegan` is not counted.
    func stepEnded() {
        count()
        mark = nil
    }

    /// At the agreement over all ranks, before its allreduce: this rank's busy seconds since the last one.
    func busySinceLastAgreement() -> Double {
        count()
        return pending.busy
    }

    /// After an agreement over all ranks: every rank's busy time since the last one (`times`, one per rank),
    /// recorded per step (a record is one step when every step agrees, a round between rounds of periodic
    /// synchronization); rank 0 judges them every tenth record once a window is full.
    func record(_ times: UnsafeBufferPointer<Double>) {
        let slot = recorded % Self.window, steps = Double(max(1, pending.steps))
        for index in 0..<size { busySeconds[slot * size + index] = times[index] / steps }
        stepSeconds[slot] = pending.wall / steps
        pending = (0, 0, 0)
        recorded += 1
        guard rank == 0, recorded >= Self.window, recorded % 10 == 0, let figures, figures.ratio > Self.threshold else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        if let lastNotice, Double(now - lastNotice) * 1e-9 < Self.noticeSeconds { return }
        lastNotice = now
        Diagnostics.note(Self.line(figures, host: hosts[figures.slowestRank]))
    }

    /// Adds the time since `mark` to `pending` and moves the mark to now (nothing between steps).
    private func count() {
        guard let start = mark else { return }
        let end = now()
        let wall = Double(end.nanoseconds - start.nanoseconds) * 1e-9
        pending.wall += wall
        pending.busy += max(0, wall - (end.waited - start.waited))
        mark = end
    }

    private func now() -> (nanoseconds: UInt64, waited: Double) {
        (DispatchTime.now().uptimeNanoseconds, communicator.waitedSeconds)
    }

    /// The figures of the steps recorded so far (at most the last `window`); nil before the first. Each rank's time
    /// is its mean step: a rank held by a CPU quota loses whole quota periods in some steps only, which a median
    /// would not see.
    public var figures: Figures? {
        let steps = min(recorded, Self.window)
        guard steps > 0 else { return nil }
        let typical = (0..<size).map { index in (0..<steps).reduce(0.0) { $0 + busySeconds[$1 * size + index] } / Double(steps) }
        return Self.judge(typical: typical, stepSeconds: stepSeconds.prefix(steps).reduce(0, +) / Double(steps))
    }

    /// The slowest of `typical` (each rank's mean busy seconds per step) against the median of the others, and the
    /// share of `stepSeconds` (a typical step's wall time: about the same on every rank, the collectives join them)
    /// the others' median is not busy, but waits.
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

}
