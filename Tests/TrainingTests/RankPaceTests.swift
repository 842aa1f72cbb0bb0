@testable import DataParallel
@testable import Distributed
import Foundation
import Support
import XCTest

/// The slow-rank figures: each rank's busy time carried by the step's agreement allreduce on ranks that are
/// threads of this process, one of them made much slower, and the judgement against the others' median.
final class RankPaceTests: XCTestCase {
    /// Collects the notes the pace prints.
    final class Lines: DiagnosticSink, @unchecked Sendable {
        private let lock = NSLock()
        private var texts: [String] = []
        var notes: [String] { lock.lock(); defer { lock.unlock() }; return texts }
        func emit(_ kind: DiagnosticKind, _ text: String) {
            guard kind == .note else { return }
            lock.lock(); texts.append(text); lock.unlock()
        }
    }

    func testMedianOfTheOthersNamesTheSlowestAndTheWait() {
        // Rank 2 computes 3 s against the others' median 1 s; a step takes 4 s, of which the median rank waits 3.
        let figures = RankPace.judge(typical: [1.1, 0.9, 3, 1], stepSeconds: 4)
        XCTAssertEqual(figures.slowestRank, 2)
        XCTAssertEqual(figures.ratio, 3 / 1.0, accuracy: 1e-12)
        XCTAssertEqual(figures.waitFraction, 0.75, accuracy: 1e-12)
        XCTAssertEqual(RankPace.line(RankPace.Figures(slowestRank: 1, ratio: 2.94, waitFraction: 0.581), host: "b"),
                       "rank 1 (host b) computes 2.9× slower than the others' median; the job runs at its pace, "
                           + "58% of each step waiting")
        // Two ranks: the other rank is the median.
        XCTAssertEqual(RankPace.judge(typical: [2, 5], stepSeconds: 6).ratio, 2.5, accuracy: 1e-12)
    }

    /// Three ranks as threads run steps of a window: work, a collective standing for the reduction, the agreement.
    /// Rank 1 works 20 times longer, so the others wait for it in the collective; rank 0 also spends half as long
    /// as rank 1's work between steps (as when it writes a checkpoint), which is no step's time. The waits and the
    /// time between steps must not count as busy: every rank must end with the same figures naming rank 1, and
    /// rank 0 must print the line once.
    func testAgreementCarriesBusyTimesAndRankZeroNamesTheSlowRank() throws {
        let lines = Lines()
        let saved = Diagnostics.sink
        Diagnostics.sink = lines
        defer { Diagnostics.sink = saved }
        let steps = RankPace.window + 20
        let results = try InProcessWorld.run(ranks: 3, timeoutSeconds: 60) { communicator -> (RankPace.Figures?, [String]) in
            let pace = try XCTUnwrap(RankPace.gathering(communicator))
            let agreement = StepAgreement.Buffer(pace: pace, world: communicator)
            for _ in 0..<steps {
                pace.stepBegan()
                usleep(communicator.rank == 1 ? 8000 : 400)
                try communicator.barrier()
                _ = try agreement.agree(StepAgreement(lossSum: 1, stopRequested: false, checkpointRequested: false,
                                                      unsummable: false), step: 0, batchRows: 1, nodeRows: 1)
                pace.stepEnded()
                if communicator.rank == 0 { usleep(4000) }
            }
            return (pace.figures, pace.hosts)
        }.map { try $0.get() }
        for (figures, hosts) in results {
            let figures = try XCTUnwrap(figures)
            XCTAssertEqual(figures.slowestRank, 1)
            // 20× by the sleeps; a loaded machine stretches the short ones, so only a wide margin is asserted. Counting
            // the waits as busy would give about 1×, counting rank 0's time between steps about 3.5×.
            XCTAssertGreaterThan(figures.ratio, 6)
            XCTAssertGreaterThan(figures.waitFraction, 0.5)
            XCTAssertEqual(hosts, Array(repeating: ProcessInfo.processInfo.hostName, count: 3))
        }
        // The busy times are agreed (the same on every rank); the wait is measured on each rank's own clock.
        XCTAssertEqual(results[0].0?.ratio, results[2].0?.ratio, "every rank judges the same agreed times")
        let named = lines.notes.filter { $0.hasPrefix("plexus: rank 1 (host ") }
        XCTAssertEqual(named.count, 1, "\(lines.notes)")
    }

    func testAWorldOfOneHasNoPace() throws {
        XCTAssertNil(try RankPace.gathering(InProcessCommunicator()))
    }
}
