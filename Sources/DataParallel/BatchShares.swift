import Distributed
import Foundation
import Formats
import Kernels
import Support

/// How the rows of each global batch are cut among the ranks: evenly, or by weights every rank holds alike
/// (`distributed.balance`: each rank's rows per second), always in whole units (deterministic mode's groups, else
/// single rows).
///
/// Weighted, every rank gets one unit, then each further unit goes to the rank that would finish it soonest (the
/// least (units + 1) / weight, the lower rank on a tie): the cut whose slowest rank is done first, which plain
/// rounding of the proportional shares is not (6.48 of 8 units rounds to 6, where 7 finishes first). Every rank
/// computes the same cut.
public final class BatchShares {
    let rank: Int
    let size: Int
    /// Rows that move together: deterministic mode's group, so a rank's share changes no sum's bits.
    let unit: Int
    /// Whether the weights may change (buffers are then sized for the largest share a rank can get).
    let balanced: Bool
    /// Each rank's weight; nil while the shares are even.
    public private(set) var weights: [Double]?
    /// The first unit of each rank (and the count at the end) for the unit counts cut so far under these weights.
    private var cuts: [Int: [Int]] = [:]

    /// Even shares of `communicator`'s ranks in units of `unit` rows; `balanced`: the weights may be set later.
    public init(_ communicator: Communicator, unit: Int = 1, balanced: Bool = false) {
        (rank, size, self.unit, self.balanced) = (communicator.rank, communicator.size, max(1, unit), balanced)
    }

    /// Sets each rank's weight (`weights.count` ranks, every one positive), or even shares with nil.
    public func setWeights(_ weights: [Double]?) {
        cuts = [:]
        guard let weights, weights.count == size, weights.allSatisfy({ $0 > 0 && $0.isFinite }) else {
            self.weights = nil
            return
        }
        self.weights = weights
    }

    /// The first unit of each rank when `units` are cut by `weights` (size + 1 bounds).
    private func cut(_ units: Int, by weights: [Double]) -> [Int] {
        if let known = cuts[units] { return known }
        var counts = [Int](repeating: 1, count: size)
        for _ in 0..<(units - size) {
            var best = 0
            for index in 1..<size where Double(counts[index] + 1) / weights[index] < Double(counts[best] + 1) / weights[best] {
                best = index
            }
            counts[best] += 1
        }
        var bounds = [0]
        for count in counts { bounds.append(bounds.last! + count) }
        cuts[units] = bounds
        return bounds
    }

    /// Rank `rank`'s rows of a global batch of `count` rows: contiguous, and all ranks' together cover it once.
    func rows(of rank: Int, ofBatch count: Int) -> Range<Int> {
        let units = (count + unit - 1) / unit
        let part: Range<Int>
        if let weights, units >= size {
            let bounds = cut(units, by: weights)
            part = bounds[rank]..<bounds[rank + 1]
        } else {
            part = chunkRange(rank, of: size, total: units)
        }
        return min(count, part.lowerBound * unit)..<min(count, part.upperBound * unit)
    }

    /// This rank's rows of a global batch of `count` rows.
    func localRows(ofBatch count: Int) -> Range<Int> { rows(of: rank, ofBatch: count) }

    /// The most rows this rank can get from a batch of at most `batchSize` rows.
    func rowCapacity(batchSize: Int) -> Int {
        let units = (batchSize + unit - 1) / unit
        // Even: rank 0 gets the remainder first; balanced: one rank may get all units but the others' one each.
        let most = balanced ? max(1, units - size + 1) : chunkRange(0, of: size, total: units).count
        return min(batchSize, most * unit)
    }
}

/// `distributed.balance`: each rank's share of every global batch follows its measured speed, its rows per busy second
/// (`typical` over the steps since the shares last changed). A rank's busy time of a step (`RankPace` measures it) is
/// the step's time not spent waiting for other ranks, so all of its work counts (rows, its slice of the
/// parameters, CPU a quota withheld); shares in proportion to rows per busy second settle where every rank is busy
/// alike. The first shares come `firstSteps` steps after a start or resume, new ones every `everySteps` steps after
/// that. Every rank holds the same busy times (the step's agreement carries them), so every rank sets the same shares
/// without a collective of its own.
public final class ShareBalance {
    /// Steps after a start or resume until the first measured shares (the first `warmupSteps` are not counted).
    static let firstSteps = 50
    static let warmupSteps = 10
    /// Steps between two measurements after that.
    static let everySteps = 100

    /// The cut the reductions read.
    public let shares: BatchShares
    private var rowSums: [Double]
    /// Each rank's busy seconds of the steps counted since the last measurement (`everySteps` × ranks at most).
    private var busy: [Double]
    private var counted = 0
    /// Steps since the start or since the shares last changed.
    private var steps = 0
    private var measured = false

    /// A balance of `shares`, starting from the weights of a checkpoint (`state`, rank 0's, sent to every rank; ignored
    /// unless it has one weight per rank, so a restart on another number of ranks measures anew). Every rank calls it.
    public init(_ shares: BatchShares, state: [TensorRecord] = [], communicator: Communicator) throws {
        self.shares = shares
        rowSums = Array(repeating: 0, count: shares.size)
        busy = Array(repeating: 0, count: shares.size * Self.everySteps)
        // [1 if saved, weight of each rank]
        var saved = [Double](repeating: 0, count: shares.size + 1)
        if let record = state.first(where: { $0.name == Self.recordName }), record.values.count == shares.size {
            saved = [1] + record.values.map(Double.init)
        }
        try saved.withUnsafeMutableBytes { try communicator.broadcast($0, root: 0) }
        if saved[0] == 1 { shares.setWeights(Array(saved[1...])) }
    }

    static let recordName = "balance.weights"

    /// After a step of `count` rows whose ranks were busy for `seconds` (one per rank): the shares of the next step;
    /// `changed` runs (on every rank alike) when they changed.
    func afterStep(count: Int, busySeconds seconds: UnsafeBufferPointer<Double>, changed: () throws -> Void = {}) rethrows {
        steps += 1
        let due = measured ? Self.everySteps : Self.firstSteps
        if steps > (measured ? 0 : Self.warmupSteps) && counted < Self.everySteps {
            for rank in 0..<shares.size {
                rowSums[rank] += Double(shares.rows(of: rank, ofBatch: count).count)
                busy[counted * shares.size + rank] = seconds[rank]
            }
            counted += 1
        }
        guard steps >= due else { return }
        let before = (0..<shares.size).map { shares.rows(of: $0, ofBatch: count).count }
        let old = shares.weights ?? Array(repeating: 1, count: shares.size)
        let speeds = (0..<shares.size).map { rank in
            let seconds = Self.typical((0..<counted).map { busy[$0 * shares.size + rank] })
            return rowSums[rank] > 0 && seconds > 0 ? rowSums[rank] / Double(counted) / seconds : old[rank]
        }
        let total = speeds.reduce(0, +)
        shares.setWeights(speeds.map { $0 / total })
        (steps, measured, counted) = (0, true, 0)
        for rank in 0..<shares.size { rowSums[rank] = 0 }
        let rows = (0..<shares.size).map { shares.rows(of: $0, ofBatch: count).count }
        if rows != before { try changed() }
        if shares.rank == 0, rows != before, let weights = shares.weights {
            Diagnostics.note("balance: rows per rank " + rows.map(String.init).joined(separator: ", ") + " of each batch of \(count) (speeds "
                + weights.map { String(format: "%.2f", $0 * Double(shares.size)) }.joined(separator: ", ") + " × the mean)")
        }
    }

    /// A rank's busy time per step: the 90th percentile of its steps, not their mean. A CPU quota lets a rank run at
    /// full speed in some steps and holds it for the rest of its period in others, and those are the steps every
    /// other rank waits for.
    static func typical(_ seconds: [Double]) -> Double {
        guard !seconds.isEmpty else { return 0 }
        let sorted = seconds.sorted()
        return sorted[Int(0.9 * Double(sorted.count - 1))]
    }

    /// What a checkpoint keeps: each rank's weight (none while the shares are even).
    public var checkpointState: [TensorRecord] {
        guard let weights = shares.weights else { return [] }
        return [TensorRecord(name: Self.recordName, shape: [weights.count], values: weights.map(Float.init))]
    }
}
