@testable import DataParallel
@testable import Distributed
import Foundation
import XCTest

/// The step's agreement on ranks that are threads of this process: started after back-propagation and finished
/// after the reduction, so that its round trip overlaps the reduction's; the norm's finiteness joining at the end.
final class StepAgreementTests: XCTestCase {
    private static func local(loss: Double, stop: Bool = false, checkpoint: Bool = false, unsummable: Bool = false,
                       nonFinite: Bool = false) -> StepAgreement {
        StepAgreement(lossSum: loss, stopRequested: stop, checkpointRequested: checkpoint, unsummable: unsummable,
                      nonFinite: nonFinite)
    }

    /// Rank 1 completes its agreement while rank 0 has started its own and not finished it (it waits for rank 1
    /// first): the values are on their way at `start`. A blocking sum at `finish` would never complete on rank 1.
    func testAStartedAgreementCompletesOnTheOtherRankBeforeThisOneFinishes() throws {
        let rankOneDone = DispatchSemaphore(value: 0)
        let results = try InProcessWorld.run(ranks: 2, timeoutSeconds: 20) { world -> (StepAgreement.Agreed, Bool) in
            let agreement = StepAgreement.Buffer(pace: nil, world: world)
            try agreement.start(Self.local(loss: world.rank == 0 ? 1.5 : 2.25, stop: world.rank == 1, checkpoint: world.rank == 0))
            var overlapped = true
            if world.rank == 0 { overlapped = rankOneDone.wait(timeout: .now() + 10) == .success }
            let agreed = try agreement.finish(step: 3, batchRows: 4, nodeRows: 4, normIsFinite: true)
            if world.rank == 1 { rankOneDone.signal() }
            return (agreed, overlapped)
        }.map { try $0.get() }
        XCTAssertTrue(results[0].1, "rank 1 finished while rank 0 had only started")
        for (agreed, _) in results {
            XCTAssertEqual(agreed.lossSum, 3.75)
            XCTAssertTrue(agreed.stopRequested)
            XCTAssertTrue(agreed.checkpointRequested)
            XCTAssertNil(agreed.divergence)
        }
    }

    /// A non-finite norm (the same on every rank) is a divergence of non-finite values; a rank's unsummable but finite
    /// gradient is a fixed-point overflow; a non-finite loss on one rank is non-finite for all.
    func testTheNormJoinsTheAgreementAtItsEnd() throws {
        let cases: [(name: String, normIsFinite: Bool, unsummableOnRank1: Bool, lossNonFiniteOnRank1: Bool, overflow: Bool?)] = [
            ("all finite", true, false, false, nil), ("norm not finite", false, false, false, false),
            ("fixed-point overflow", true, true, false, true), ("loss not finite", true, true, true, false),
        ]
        for item in cases {
            let results = try InProcessWorld.run(ranks: 3, timeoutSeconds: 20) { world -> StepAgreement.Agreed in
                let agreement = StepAgreement.Buffer(pace: nil, world: world)
                let marked = world.rank == 1
                try agreement.start(Self.local(loss: 1, unsummable: marked && item.unsummableOnRank1,
                                          nonFinite: marked && item.lossNonFiniteOnRank1))
                return try agreement.finish(step: 7, batchRows: 6, nodeRows: 6, normIsFinite: item.normIsFinite)
            }.map { try $0.get() }
            for agreed in results {
                XCTAssertEqual(agreed.divergence?.step, item.overflow == nil ? nil : 7, item.name)
                XCTAssertEqual(agreed.divergence?.fixedPointOverflow, item.overflow, item.name)
                XCTAssertEqual(agreed.divergence?.loss, item.overflow == nil ? nil : 0.5, item.name)
            }
        }
    }

    /// At a round of periodic synchronization each node has its own norm: one node's non-finite norm goes into the
    /// sum over all ranks, so every node learns of it at that step; between rounds only the node does.
    func testANodesOwnNormReachesEveryNodeAtARound() throws {
        let results = try InProcessWorld.run(ranks: 4, ranksPerNode: 2, timeoutSeconds: 20) { world -> [Bool] in
            let (node, _) = try world.nodeGroups(sharedMemory: true)
            let agreement = StepAgreement.Buffer(pace: nil, world: world, node: node)
            let firstNode = world.rank < 2
            var diverged: [Bool] = []
            // Between rounds: only the first node sees its own divergence.
            try agreement.start(Self.local(loss: 1), acrossNodes: false)
            let within = try agreement.finish(step: 0, batchRows: 8, nodeRows: 4, normIsFinite: !firstNode)
            diverged.append(within.nodeDiverged)
            // At the round: every rank learns of it.
            try agreement.start(Self.local(loss: 1), acrossNodes: true)
            let round = try agreement.finish(step: 1, batchRows: 8, nodeRows: 4, normIsFinite: true)
            diverged.append(round.divergence?.step == 0)
            // A round whose own step the second node's norm is not finite at: every rank learns of it there.
            let fresh = StepAgreement.Buffer(pace: nil, world: world, node: node)
            try fresh.start(Self.local(loss: 1), acrossNodes: true)
            diverged.append(try fresh.finish(step: 0, batchRows: 8, nodeRows: 4, normIsFinite: firstNode).divergence?.step == 0)
            return diverged
        }.map { try $0.get() }
        XCTAssertEqual(results, [[true, true, true], [true, true, true], [false, true, true], [false, true, true]])
    }
}
