import XCTest
@testable import Distributed

/// Who a stall names and who reports it, from the arrival notices alone.
final class StallTests: XCTestCase {
    func testRanksWithoutANoticeAreMissingAndTheLowestArrivedRankReports() {
        // Rank 1's view of 4 ranks in collective 10: rank 3 has said it waits there, rank 0 and 2 have not.
        var ledger = ArrivalLedger(rank: 1, size: 4)
        ledger.record(from: 3, sequence: 10, expired: false)
        XCTAssertEqual(ledger.missing(at: 10), [0, 2])
        XCTAssertEqual(ledger.reporter(at: 10), 1)
        // Rank 0's notice arrives: it reports, and only rank 2 is missing.
        ledger.record(from: 0, sequence: 10, expired: false)
        XCTAssertEqual(ledger.missing(at: 10), [2])
        XCTAssertEqual(ledger.reporter(at: 10), 0)
    }

    func testAStaleNoticeIsNoArrival() {
        var ledger = ArrivalLedger(rank: 0, size: 3)
        ledger.record(from: 1, sequence: 4, expired: false)
        ledger.record(from: 2, sequence: 9, expired: true)
        // A notice from an earlier collective does not count for collective 9; a later one never goes back.
        XCTAssertEqual(ledger.missing(at: 9), [1])
        ledger.record(from: 2, sequence: 3, expired: false)
        XCTAssertEqual(ledger.missing(at: 9), [1])
        XCTAssertTrue(ledger.deadlinePassedElsewhere(at: 9))
        XCTAssertTrue(ledger.deadlinePassedElsewhere(at: 10))
        XCTAssertFalse(ledger.deadlinePassedElsewhere(at: 11))
        // Out-of-range senders are ignored.
        ledger.record(from: 7, sequence: 99, expired: true)
        XCTAssertEqual(ledger.missing(at: 9), [1])
    }

    func testARankOneCollectiveBehindHasArrived() {
        // Rank 2 stopped inside barrier 7 after its first messages: rank 0 completed it and waits in 8, rank 1 still
        // waits in 7. Both wait for rank 2, so rank 0 must not name rank 1; two collectives behind is no arrival.
        var ledger = ArrivalLedger(rank: 0, size: 3)
        ledger.record(from: 1, sequence: 7, expired: false)
        XCTAssertEqual(ledger.missing(at: 8), [2])
        XCTAssertEqual(ledger.missing(at: 9), [1, 2])
    }

    func testNoNoticeYetIsNoArrivalAtTheFirstCollective() {
        // Start-up: nobody has sent a notice; the first collective's wait must not count anyone as arrived or expired.
        var ledger = ArrivalLedger(rank: 1, size: 3)
        XCTAssertEqual(ledger.missing(at: 1), [0, 2])
        XCTAssertFalse(ledger.deadlinePassedElsewhere(at: 1))
        XCTAssertEqual(ledger.reporter(at: 1), 1)
        ledger.record(from: 0, sequence: 1, expired: true)
        XCTAssertEqual(ledger.missing(at: 2), [2])
        XCTAssertTrue(ledger.deadlinePassedElsewhere(at: 2))
    }

    func testTheStallLine() {
        let stall = CollectiveStalled(ranks: [2], activity: .step(4812), timeoutSeconds: 10)
        XCTAssertEqual(stall.description, "rank 2 stalled at step 4812: no progress for 10 s; stopping the job")
        let several = CollectiveStalled(ranks: [1, 3], activity: .evaluation(epoch: 2), timeoutSeconds: 2.5)
        XCTAssertEqual(several.description,
                       "ranks 1, 3 stalled in the evaluation after epoch 2: no progress for 2.5 s; stopping the job")
        // Every other rank arrived: the rank that throws it was the stopped one.
        let itself = CollectiveStalled(ranks: [], activity: .step(45), timeoutSeconds: 3)
        XCTAssertEqual(itself.description, "stalled at step 45 itself: no progress for 3 s; stopping the job")
        XCTAssertNil(itself.rankInvolved)
        XCTAssertEqual(several.rankInvolved, 1)
        XCTAssertEqual(Activity.startUp.description, "at start-up")
    }

    func testManyLateNapsAreNoStopButOneLongNapIs() {
        // A loaded machine: 100 µs naps that each end 4 ms late, 730 of them in a 3 s wait. Together they are most of
        // the wait, yet the rank was never stopped: it must not name itself.
        var held = HeldTime()
        var now: UInt64 = 1_000_000
        held.read(now, afterNapMicroseconds: 0)
        for _ in 0..<730 {
            held.slept(4_100_000, napMicroseconds: 100)
            now += 4_100_000
            held.read(now, afterNapMicroseconds: 100)
        }
        XCTAssertEqual(held.totalSeconds, 730 * 0.004, accuracy: 1e-9)
        XCTAssertFalse(held.stoppedItself(timeoutSeconds: 3))
        // Stopped for 1.6 s in one nap, then resumed: half the timeout at a stretch, so it is the one stalled.
        held.slept(1_600_100_000, napMicroseconds: 100)
        XCTAssertTrue(held.stoppedItself(timeoutSeconds: 3))
        XCTAssertFalse(held.stoppedItself(timeoutSeconds: 4))
    }

    func testALongMPICallIsNoStop() {
        // 2 s between two readings with no nap in between: an MPI call that blocked (a connection to a cut-off host).
        // It counts as time not waiting, but the rank was running: it must not name itself.
        var held = HeldTime()
        held.read(1_000_000, afterNapMicroseconds: 0)
        held.read(2_001_000_000, afterNapMicroseconds: 0)
        XCTAssertEqual(held.totalSeconds, 2, accuracy: 1e-9)
        XCTAssertFalse(held.stoppedItself(timeoutSeconds: 3))
    }

    func testAGapWithinTheSlackOfItsNapIsNotHeld() {
        var held = HeldTime()
        held.read(10_000_000, afterNapMicroseconds: 0)
        held.slept(500_000, napMicroseconds: 100)
        held.read(10_000_000 + 100_000 + 400_000, afterNapMicroseconds: 100)
        XCTAssertEqual(held.totalSeconds, 0)
        XCTAssertFalse(held.stoppedItself(timeoutSeconds: 0.001))
        // The first reading of a wait has nothing before it.
        var first = HeldTime()
        first.read(5_000_000_000, afterNapMicroseconds: 100)
        XCTAssertEqual(first.totalSeconds, 0)
    }

    func testAWaitSpinsLongOnlyAfterTheRankHadItsCore() {
        var spin = WaitSpin()
        // Nothing measured yet: the short spin.
        XCTAssertEqual(spin.seconds(wall: 5_000_000, cpu: 1_000_000), WaitSpin.shortSeconds)
        spin.waitEnded(wall: 10_000_000, cpu: 2_000_000)
        // 4 ms since, 3.9 ms of them run: the long spin.
        XCTAssertEqual(spin.seconds(wall: 14_000_000, cpu: 5_900_000), WaitSpin.longSeconds)
        // 4 ms since, 2 ms run (a quota, or a core shared with another rank): the short one.
        XCTAssertEqual(spin.seconds(wall: 14_000_000, cpu: 4_000_000), WaitSpin.shortSeconds)
        // Just under the share: short; at it: long.
        XCTAssertEqual(spin.seconds(wall: 20_000_000, cpu: 2_000_000 + 8_999_000), WaitSpin.shortSeconds)
        XCTAssertEqual(spin.seconds(wall: 20_000_000, cpu: 2_000_000 + 9_000_000), WaitSpin.longSeconds)
        // A clock that did not move forward measures nothing.
        XCTAssertEqual(spin.seconds(wall: 10_000_000, cpu: 3_000_000), WaitSpin.shortSeconds)
        XCTAssertEqual(spin.seconds(wall: 12_000_000, cpu: 1_000_000), WaitSpin.shortSeconds)
        // The thread's CPU clock advances with work done on it.
        let before = WaitSpin.threadCPUNanoseconds()
        var x = 0.0
        for i in 0..<2_000_000 { x += Double(i).squareRoot() }
        XCTAssertGreaterThan(x, 0)
        XCTAssertGreaterThan(WaitSpin.threadCPUNanoseconds(), before)
    }
}
