@testable import DataParallel
@testable import Distributed
import Config
import Foundation
import Kernels
import NeuralNet
import Support
@testable import Training
import XCTest

/// Between rounds of periodic synchronization the ranks agree within their node only (two simulated nodes, one rank
/// each, on threads): a stop asked for on one node, the loss sums and a divergence reach every rank at the round.
extension InProcessTrainingTests {
    /// Rounds of 4 steps (an overlapped outer optimizer), an epoch of 10 steps whose last one synchronizes: the epoch
    /// loss the world agreements add up is the mean of the steps' losses (each node's rows summed by hand); then a stop
    /// rank 1 asks for after step 13 reaches no rank before the round after step 16, and there every rank stops with
    /// the same parameters and nothing in flight, so the checkpoint can be taken.
    func testPeriodicSyncStopAndLossesBetweenRoundsReachEveryRankAtTheRound() throws {
        let config = try TrainingConfig.load(path: self.config, overrides: ["distributed.shared_memory=false"])
        var outcomes: [[TrainingStep.Outcome]] = [[], []], parameters: [[Float]] = [[], []], saved: [Int] = [0, 0]
        let lock = NSLock()
        for result in InProcessWorld.run(ranks: 2, ranksPerNode: 1, timeoutSeconds: 120, { world in
            let setup = try TrainingSetup(config: config, communicator: world)
            let reduction = try makeGradientReduction(config.reductionOptions, network: setup.network, communicator: world, threads: 1)
            let sync = try makeSynchronization(
                SyncOptions(every: 4, warmupSteps: 0, outer: OuterOptimizerOptions(), sharedMemory: false, overlap: true),
                reduction: reduction, network: setup.network, optimizer: setup.optimizer, communicator: world)
            var done = 0
            let step = TrainingStep(network: setup.network, optimizer: setup.optimizer, schedule: setup.schedule,
                                    loss: config.loss, rows: setup.train, reduction: reduction, communicator: world,
                                    options: config.stepOptions(threads: 1), synchronization: sync,
                                    stopRequested: { world.rank == 1 && done >= 13 })
            var mine: [TrainingStep.Outcome] = []
            for index in 0..<20 {
                let epoch = index / 10, batch = index % 10
                let outcome = try step.run(batchIndex: batch, of: setup.epochOrder(epoch), step: index, synchronize: batch == 9)
                mine.append(outcome)
                done = index + 1
                if outcome.stopRequested { break }
            }
            let records = try sync.checkpointState(optimizer: setup.optimizer)
            lock.lock(); defer { lock.unlock() }
            (outcomes[world.rank], parameters[world.rank], saved[world.rank]) = (mine, Array(setup.network.parameters), records.count)
        }) { try result.get() }

        XCTAssertEqual(outcomes[0].count, 16, "the stop after step 13 is acted on at the round after step 16")
        XCTAssertEqual(outcomes[1].count, 16)
        for index in 0..<16 {
            let round = (index + 1) % 4 == 0 || index == 9
            for rank in 0..<2 {
                XCTAssertEqual(outcomes[rank][index].stopRequested, index == 15, "rank \(rank), step \(index + 1)")
                XCTAssertEqual(outcomes[rank][index].agreedLossSum == 0, !round, "rank \(rank), step \(index + 1)")
            }
            XCTAssertEqual(outcomes[0][index].agreedLossSum, outcomes[1][index].agreedLossSum)
            if round {
                XCTAssertEqual(outcomes[0][index].lossSum, outcomes[1][index].lossSum, "the world's loss at a round")
            } else {
                XCTAssertNotEqual(outcomes[0][index].lossSum, outcomes[1][index].lossSum, "each node's own between rounds")
            }
        }
        // The first epoch: 480 rows in 10 batches of 50 (the last 30); each node has half of every batch.
        var stepsLossSum = 0.0
        for index in 0..<10 {
            let rows = index == 9 ? 30 : 50
            for rank in 0..<2 {
                let outcome = outcomes[rank][index]
                XCTAssertEqual(outcome.samples, rows)
                // A step's reported loss between rounds is the node's mean scaled to the batch; at a round the world's.
                let round = (index + 1) % 4 == 0 || index == 9
                stepsLossSum += round ? outcome.lossSum / 2
                    : outcome.lossSum * Double(chunkRange(rank, of: 2, total: rows).count) / Double(rows)
            }
        }
        let epochLossSum = outcomes[0].prefix(10).reduce(0) { $0 + $1.agreedLossSum }
        XCTAssertGreaterThan(epochLossSum, 0)
        XCTAssertEqual(epochLossSum / 480, stepsLossSum / 480, accuracy: 1e-9 * stepsLossSum / 480,
                       "the epoch's loss is the mean of its steps' losses")
        XCTAssertEqual(parameters[0], parameters[1], "every node holds the same parameters at the stop")
        XCTAssertGreaterThan(saved[0], 0, "rank 0 holds the checkpoint's state")
    }

    /// Rank 1's rows turn non-finite from step 6 (between the rounds after steps 4 and 8): its node takes no optimizer
    /// step from there and stays finite, rank 0 trains on, and at the round after step 8 every rank learns the
    /// divergence naming step 6.
    func testPeriodicSyncDivergenceBetweenRoundsEndsTheRunAtTheRound() throws {
        let config = try TrainingConfig.load(path: self.config, overrides: ["distributed.shared_memory=false"])
        var outcomes: [[TrainingStep.Outcome]] = [[], []], history: [[[Float]]] = [[], []]
        let lock = NSLock()
        for result in InProcessWorld.run(ranks: 2, ranksPerNode: 1, timeoutSeconds: 120, { world in
            let setup = try TrainingSetup(config: config, communicator: world)
            let reduction = try makeGradientReduction(config.reductionOptions, network: setup.network, communicator: world, threads: 1)
            let sync = try makeSynchronization(SyncOptions(every: 4, warmupSteps: 0, outer: nil, sharedMemory: false),
                                               reduction: reduction, network: setup.network, optimizer: setup.optimizer,
                                               communicator: world)
            let rows = PoisonedRows(setup.train)
            let step = TrainingStep(network: setup.network, optimizer: setup.optimizer, schedule: setup.schedule,
                                    loss: config.loss, rows: rows, reduction: reduction, communicator: world,
                                    options: config.stepOptions(threads: 1), synchronization: sync)
            var mine: [TrainingStep.Outcome] = [], seen: [[Float]] = []
            for index in 0..<10 {
                rows.poisoned = world.rank == 1 && index >= 5
                let outcome = try step.run(batchIndex: index, of: setup.epochOrder(0), step: index)
                mine.append(outcome)
                seen.append(Array(setup.network.parameters))
                if outcome.divergence != nil { break }
            }
            lock.lock(); defer { lock.unlock() }
            (outcomes[world.rank], history[world.rank]) = (mine, seen)
        }) { try result.get() }

        for rank in 0..<2 {
            XCTAssertEqual(outcomes[rank].count, 8, "rank \(rank) stops at the round after step 8")
            XCTAssertTrue(outcomes[rank].dropLast().allSatisfy { $0.divergence == nil }, "rank \(rank)")
            let divergence = try XCTUnwrap(outcomes[rank].last?.divergence)
            XCTAssertEqual(divergence.step, 5, "the first step a node saw it (0-based)")
            XCTAssertFalse(divergence.fixedPointOverflow)
            XCTAssertTrue(history[rank].allSatisfy { $0.allSatisfy(\.isFinite) }, "rank \(rank) never steps on non-finite values")
        }
        XCTAssertEqual(history[1][5], history[1][4], "the diverged node takes no optimizer step")
        XCTAssertEqual(history[1][6], history[1][4])
        XCTAssertNotEqual(history[0][6], history[0][4], "the other node trains on until the round")
    }
}

/// Training rows whose first feature turns NaN while `poisoned`.
private final class PoisonedRows: TrainingRows {
    let inner: TrainingRows
    var poisoned = false

    init(_ inner: TrainingRows) { self.inner = inner }

    var count: Int { inner.count }
    var featureCount: Int { inner.featureCount }
    var targetCount: Int { inner.targetCount }
    var rowWeights: [Float]? { inner.rowWeights }

    func gather(rows: UnsafeBufferPointer<Int32>, features: UnsafeMutablePointer<Float>, targets: UnsafeMutablePointer<Float>,
                threads: Int) {
        inner.gather(rows: rows, features: features, targets: targets, threads: threads)
        if poisoned { features[0] = .nan }
    }
}
