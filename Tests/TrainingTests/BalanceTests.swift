@testable import DataParallel
@testable import Distributed
import Formats
import XCTest

/// Balanced shares of each global batch (`distributed.balance`) on ranks that are threads of this process: the cut
/// against the weights, the balance against given speeds, and its round trip through a checkpoint's records.
final class BalanceTests: XCTestCase {
    /// Every rank's rows of a batch of `count` under `weights`, as rank 0 of a world of `ranks` computes them.
    func cut(_ weights: [Double]?, ranks: Int, unit: Int, count: Int) throws -> [Range<Int>] {
        try InProcessWorld.run(ranks: ranks, ranksPerNode: ranks, timeoutSeconds: 30) { world in
            let shares = BatchShares(world, unit: unit, balanced: true)
            shares.setWeights(weights)
            return (0..<ranks).map { shares.rows(of: $0, ofBatch: count) }
        }[0].get()
    }

    func testSharesFollowTheWeightsInWholeUnitsAndCoverTheBatch() throws {
        for (weights, unit, count) in [([1.0, 0.3], 32, 256), ([1.0, 0.3], 32, 250), ([2.0, 1, 1], 1, 101),
                                       ([5.0, 1, 1, 1], 4, 64), ([1.0, 1e-6], 8, 64), ([1.0, 1, 1], 32, 40)] {
            let rows = try cut(weights, ranks: weights.count, unit: unit, count: count)
            XCTAssertEqual(rows.first?.lowerBound, 0)
            XCTAssertEqual(rows.last?.upperBound, count)
            let units = (count + unit - 1) / unit
            for (rank, range) in rows.enumerated() {
                if rank > 0 { XCTAssertEqual(range.lowerBound, rows[rank - 1].upperBound, "\(weights) contiguous") }
                XCTAssertTrue(range.lowerBound % unit == 0 || range.isEmpty, "\(weights): rank \(rank) starts on a unit")
                XCTAssertTrue(range.upperBound % unit == 0 || range.upperBound == count, "\(weights): whole units")
                guard units >= weights.count else { continue }
                // Within one unit of the rank's weight share, and one unit at least.
                let mine = (range.count + unit - 1) / unit
                let ideal = max(1, Double(units) * weights[rank] / weights.reduce(0, +))
                XCTAssertGreaterThanOrEqual(mine, 1, "\(weights), unit \(unit): rank \(rank)")
                XCTAssertLessThanOrEqual(abs(Double(mine) - ideal), 1, "\(weights), unit \(unit): rank \(rank) has \(mine) units")
            }
        }
        // Nil weights: the even cut of the fixed-point groups; 30% of a core's speed: 6 and 2 groups of 32 rows.
        XCTAssertEqual(try cut(nil, ranks: 3, unit: 4, count: 26), [0..<12, 12..<20, 20..<26])
        XCTAssertEqual(try cut([1, 0.3], ranks: 2, unit: 32, count: 256), [0..<192, 192..<256])
    }

    /// Steps in which rank r is busy 1 ms plus its rows at `speeds[r]` rows per second.
    func balance(speeds: [Double], unit: Int, batch: Int, steps: Int) throws -> [[Range<Int>]] {
        try InProcessWorld.run(ranks: speeds.count, ranksPerNode: speeds.count, timeoutSeconds: 30) { world in
            let balance = try ShareBalance(BatchShares(world, unit: unit, balanced: true), communicator: world)
            var seconds = [Double](repeating: 0, count: speeds.count)
            for _ in 0..<steps {
                for rank in speeds.indices {
                    seconds[rank] = 0.001 + Double(balance.shares.rows(of: rank, ofBatch: batch).count) / speeds[rank]
                }
                try seconds.withUnsafeBufferPointer { try balance.afterStep(count: batch, busySeconds: $0) }
            }
            return speeds.indices.map { balance.shares.rows(of: $0, ofBatch: batch) }
        }.map { try $0.get() }
    }

    func testSharesFollowMeasuredSpeedsOnEveryRankAlike() throws {
        let speeds = [30_000.0, 9_000, 20_000]
        // Before the first measurement the shares stay even.
        let early = try balance(speeds: speeds, unit: 1, batch: 600, steps: ShareBalance.firstSteps - 1)
        XCTAssertEqual(early[0], [0..<200, 200..<400, 400..<600])
        for steps in [ShareBalance.firstSteps, ShareBalance.firstSteps + ShareBalance.everySteps] {
            let ranks = try balance(speeds: speeds, unit: 1, batch: 600, steps: steps)
            XCTAssertEqual(Set(ranks.map { $0.map(\.count) }).count, 1, "every rank cuts the batch alike")
            let counts = ranks[0].map(\.count), total = speeds.reduce(0, +)
            for (rank, count) in counts.enumerated() {
                // The fixed 1 ms of each step weighs least on the slowest rank, so its share is a little larger.
                XCTAssertEqual(Double(count), 600 * speeds[rank] / total, accuracy: 15, "after \(steps) steps: \(counts)")
            }
        }
        // Whole groups of 32 at 30% of a core's speed: 6 and 2 of the 8 groups.
        let quota = try balance(speeds: [10_000, 3_000], unit: 32, batch: 256, steps: ShareBalance.firstSteps)
        XCTAssertEqual(quota[0].map(\.count), [192, 64])
    }

    func testCheckpointKeepsTheWeightsAndAnotherWorldMeasuresAnew() throws {
        let saved = try InProcessWorld.run(ranks: 2, ranksPerNode: 2, timeoutSeconds: 30) { world in
            let balance = try ShareBalance(BatchShares(world, unit: 32, balanced: true), communicator: world)
            XCTAssertEqual(balance.checkpointState, [], "even shares save nothing")
            balance.shares.setWeights([0.7, 0.3])
            return balance.checkpointState
        }[0].get()
        XCTAssertEqual(saved.map(\.name), [ShareBalance.recordName])
        // Only rank 0 holds a checkpoint's records: the balance sends them to every rank.
        let resumed = try InProcessWorld.run(ranks: 2, ranksPerNode: 2, timeoutSeconds: 30) { world in
            let balance = try ShareBalance(BatchShares(world, unit: 32, balanced: true), state: world.rank == 0 ? saved : [],
                                           communicator: world)
            return [0, 1].map { balance.shares.rows(of: $0, ofBatch: 256) }
        }.map { try $0.get() }
        XCTAssertEqual(resumed[0], [0..<192, 192..<256])
        XCTAssertEqual(resumed[1], resumed[0])
        let three = try InProcessWorld.run(ranks: 3, ranksPerNode: 3, timeoutSeconds: 30) { world in
            let balance = try ShareBalance(BatchShares(world, unit: 32, balanced: true), state: world.rank == 0 ? saved : [],
                                           communicator: world)
            return balance.shares.weights
        }.map { try $0.get() }
        XCTAssertEqual(three, [nil, nil, nil])
    }
}
