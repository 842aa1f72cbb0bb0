@testable import Distributed
import Foundation
import Kernels
import NeuralNet
import Support
import XCTest

/// The in-process world: ranks as threads with real collectives, node groups, shared memory and ring sums.
final class InProcessWorldTests: XCTestCase {
    /// Runs `body` on `ranks` in-process ranks and returns every rank's value, failing the test on any error.
    func values<Value>(ranks: Int, ranksPerNode: Int = 1, timeout: Double = 20, file: StaticString = #filePath, line: UInt = #line,
                       _ body: @escaping (Communicator) throws -> Value) throws -> [Value] {
        try InProcessWorld.run(ranks: ranks, ranksPerNode: ranksPerNode, timeoutSeconds: timeout, body).map { try $0.get() }
    }

    /// Rank `rank`'s test values: different on every rank, with fractions that round when added.
    static func input(rank: Int, count: Int) -> [Float] {
        var generator = SplitMix64(seed: UInt64(rank + 1))
        return (0..<count).map { _ in Float(generator.nextUnitDouble() * 2 - 1) * (1 + Float(rank) / 3) }
    }

    func testWorldOfOneIsTheIdentity() throws {
        let world = InProcessCommunicator()
        XCTAssertEqual([world.rank, world.size], [0, 1])
        XCTAssertEqual(world.kind, "local")
        var values: [Float] = [1.5, -2]
        try values.withUnsafeMutableBufferPointer { try world.allreduceSum($0) }
        XCTAssertEqual(values, [1.5, -2])
        XCTAssertEqual(try world.allreduceMax(7), 7)
        XCTAssertEqual(try world.broadcast("text", root: 0), "text")
        try world.barrier()
        let (node, crossNode) = try world.nodeGroups(sharedMemory: true)
        XCTAssertEqual([node.size, crossNode.size], [1, 1])
        let memory = try node.sharedMemory(bytes: 100)
        memory.base.storeBytes(of: 42, as: Int.self)
        try memory.synchronize()
        XCTAssertEqual(memory.base.load(as: Int.self), 42)
        let ring = crossNode.ringSum(capacity: 2, tag: 0)
        try values.withUnsafeMutableBytes { try ring.start($0.baseAddress!, count: 2, of: .float) }
        try ring.wait()
        XCTAssertEqual(values, [1.5, -2])
    }

    func testCollectivesAddInRankOrder() throws {
        let count = 1000
        let results = try values(ranks: 3) { world -> ([Float], [Double], [Int64], [UInt16], Int64, Int64, String) in
            var floats = Self.input(rank: world.rank, count: count)
            try floats.withUnsafeMutableBufferPointer { try world.allreduceSum($0) }
            let doubles = try world.allreduceSum([Double(world.rank) + 0.1, 1])
            var integers: [Int64] = [Int64(world.rank) << 40, -1]
            try integers.withUnsafeMutableBufferPointer { try world.allreduceSum($0) }
            var halves = Self.input(rank: world.rank, count: count).map(bfloat16Bits)
            try halves.withUnsafeMutableBytes { try world.allreduceSum($0.baseAddress!, count: count, of: .bfloat16) }
            let text = try world.broadcast(world.rank == 2 ? "from rank 2" : "", root: 2)
            try world.barrier()
            return (floats, doubles, integers, halves, try world.allreduceMax(Int64(10 - world.rank)),
                    try world.allreduceMin(Int64(10 - world.rank)), text)
        }
        var floats = Self.input(rank: 0, count: count), halves = floats.map(bfloat16Bits)
        for rank in 1..<3 {
            for (index, value) in Self.input(rank: rank, count: count).enumerated() {
                floats[index] += value
                halves[index] = bfloat16Bits(floatFromBFloat16(bfloat16Bits(value)) + floatFromBFloat16(halves[index]))
            }
        }
        for result in results {
            XCTAssertEqual(result.0, floats)
            XCTAssertEqual(result.1, [(0.1 + (1 + 0.1)) + (2 + 0.1), 3])
            XCTAssertEqual(result.2, [3 << 40, -3])
            XCTAssertEqual(result.3, halves)
            XCTAssertEqual([result.4, result.5], [10, 8])
            XCTAssertEqual(result.6, "from rank 2")
        }
    }

    /// Each chunk of a ring sum is added in ring order, starting at the rank whose index it has:
    /// ((x_k + x_k+1) + x_k+2) + … — the additions `RingSum` does under MPI too.
    static func ringReference(ranks: Int, count: Int, add: (Float, Float) -> Float) -> [Float] {
        let inputs = (0..<ranks).map { input(rank: $0, count: count) }
        var total = [Float](repeating: 0, count: count)
        for chunk in 0..<ranks {
            for index in chunkRange(chunk, of: ranks, total: count) {
                var sum = inputs[chunk][index]
                for step in 1..<ranks { sum = add(inputs[(chunk + step) % ranks][index], sum) }
                total[index] = sum
            }
        }
        return total
    }

    /// At 2 ranks a ring sum is one swap: once both ranks have started it, one `test` completes it, with nothing
    /// the other rank has to post half-way (a reduce-scatter step would wait for the other's allgather message).
    func testRingSumOnTwoRanksIsOneExchange() throws {
        let completed = try values(ranks: 2) { world -> (Bool, [Float]) in
            let ring = world.ringSum(capacity: 3, tag: 0)
            var values: [Float] = world.rank == 0 ? [1, 2, 3] : [10, 20, 30]
            var done = false
            try values.withUnsafeMutableBytes { buffer in
                try ring.start(buffer.baseAddress!, count: 3, of: .float)
                try world.barrier()  // both messages are on their way
                if world.rank == 0 { done = try ring.test() }
                try world.barrier()  // rank 1 advanced nothing before rank 0's test
                try ring.wait()
            }
            return (done, values)
        }
        XCTAssertTrue(completed[0].0, "rank 0's first test completes the sum")
        for (rank, run) in completed.enumerated() { XCTAssertEqual(run.1, [11, 22, 33], "rank \(rank)") }
    }

    func testRingSumOfFloatsBFloat16AndDoublesOn2To4Ranks() throws {
        let count = 1001
        for ranks in 2...4 {
            let rings = try values(ranks: ranks) { world -> ([Float], [UInt16], [Float]) in
                let ring = world.ringSum(capacity: count, tag: 0), other = world.ringSum(capacity: 5, tag: 1)
                var floats = Self.input(rank: world.rank, count: count)
                var halves = floats.map(bfloat16Bits)
                var small = Array(floats.prefix(5))
                try floats.withUnsafeMutableBytes { floats in
                    try small.withUnsafeMutableBytes { small in
                        // Two rings in flight at once, advanced by `test` and completed in the other order.
                        try ring.start(floats.baseAddress!, count: count, of: .float)
                        try other.start(small.baseAddress!, count: 5, of: .float)
                        for _ in 0..<3 { try ring.test(); try other.test() }
                        try other.wait()
                        try ring.wait()
                    }
                }
                try halves.withUnsafeMutableBytes { halves in
                    try ring.start(halves.baseAddress!, count: count, of: .bfloat16)
                    try ring.wait()
                }
                // Doubles holding integers: exact in any order.
                var doubles = (0..<count).map { Double($0 * 1_000_003 + world.rank) * 0.5 }
                try doubles.withUnsafeMutableBytes { doubles in
                    try ring.start(doubles.baseAddress!, count: count, of: .double)
                    try ring.wait()
                }
                let ranks = Double(world.size)
                XCTAssertEqual(doubles, (0..<count).map { (Double($0 * 1_000_003) * ranks + ranks * (ranks - 1) / 2) * 0.5 },
                               "\(world.size) ranks: a ring of doubles")
                var plain = Self.input(rank: world.rank, count: count)
                try plain.withUnsafeMutableBufferPointer { try world.allreduceSum($0) }
                XCTAssertEqual(small, Self.ringReference(ranks: world.size, count: 5) { $0 + $1 }, "\(ranks) ranks: a ring of 5 values")
                return (floats, halves, plain)
            }
            let floats = Self.ringReference(ranks: ranks, count: count) { $0 + $1 }
            let halves = Self.ringReference(ranks: ranks, count: count) {
                floatFromBFloat16(bfloat16Bits(floatFromBFloat16(bfloat16Bits($0)) + floatFromBFloat16(bfloat16Bits($1))))
            }.map(bfloat16Bits)
            for (rank, ring) in rings.enumerated() {
                XCTAssertEqual(ring.0, floats, "\(ranks) ranks, rank \(rank): float ring")
                XCTAssertEqual(ring.1, halves, "\(ranks) ranks, rank \(rank): bfloat16 ring")
                if ranks == 2 { XCTAssertEqual(ring.0, ring.2, "2 ranks: the ring is a + b, as the plain sum") }
                for (a, b) in zip(ring.0, ring.2) { XCTAssertEqual(a, b, accuracy: 1e-5 * max(1, abs(b))) }
            }
        }
    }

    func testNodeGroupsAndSharedMemory() throws {
        let groups = try values(ranks: 4, ranksPerNode: 2) { world -> [Int] in
            let (node, crossNode) = try world.nodeGroups(sharedMemory: true)
            let (alone, everyone) = try world.nodeGroups(sharedMemory: false)
            let memory = try node.sharedMemory(bytes: 2 * 8)
            memory.base.storeBytes(of: 100 * world.rank, toByteOffset: node.rank * 8, as: Int.self)
            try memory.synchronize()
            let neighbour = memory.base.load(fromByteOffset: (1 - node.rank) * 8, as: Int.self)
            try memory.synchronize()
            var sum: [Int64] = [Int64(world.rank)]
            try sum.withUnsafeMutableBufferPointer { try crossNode.allreduceSum($0) }
            return [node.rank, node.size, crossNode.rank, crossNode.size, alone.size, everyone.rank, everyone.size,
                    neighbour, Int(sum[0])]
        }
        XCTAssertEqual(groups, [[0, 2, 0, 2, 1, 0, 4, 100, 2], [1, 2, 0, 2, 1, 1, 4, 0, 4],
                                [0, 2, 1, 2, 1, 2, 4, 300, 2], [1, 2, 1, 2, 1, 3, 4, 200, 4]])
        // Ranks of different nodes share no memory.
        let across = InProcessWorld.run(ranks: 2, ranksPerNode: 1) { try $0.sharedMemory(bytes: 8) }
        for result in across { XCTAssertThrowsError(try result.get()) }
    }

    func testCollectivelyStopsEveryRankWithTheLowestFailingRanksError() throws {
        XCTAssertEqual(try values(ranks: 3) { world in try collectively(world) { world.rank * 2 } }, [0, 2, 4])
        let results = InProcessWorld.run(ranks: 3) { world -> Int in
            try collectively(world) {
                if world.rank >= 1 { throw UserError("rank \(world.rank)'s mistake") }
                return 1
            }
        }
        for (rank, result) in results.enumerated() {
            XCTAssertThrowsError(try result.get()) { error in
                let failure = error as? CollectiveFailure
                XCTAssertEqual(failure?.reportingRank, 1)
                XCTAssertEqual(failure?.description, "rank 1's mistake")
                XCTAssertEqual(failure?.exitStatus, 2)
                XCTAssertEqual(failure?.cause, .userError)
                XCTAssertEqual(failure?.error != nil, rank == 1, "only the reporting rank keeps its own error")
            }
        }
        // A user's mistake on rank 0 and an internal failure on rank 2: status 1.
        let mixed = InProcessWorld.run(ranks: 3) { world -> Int in
            try collectively(world) {
                if world.rank == 0 { throw UserError("bad key") }
                if world.rank == 2 { throw CommunicationError("lost") }
                return 1
            }
        }
        for result in mixed {
            XCTAssertThrowsError(try result.get()) { error in
                XCTAssertEqual((error as? CollectiveFailure)?.exitStatus, 1)
                XCTAssertEqual((error as? CollectiveFailure)?.cause, .internal)
                XCTAssertEqual((error as? CollectiveFailure)?.description, "bad key")
            }
        }
    }

    func testAWaitEndsAtTheDeadlineOrWhenTheAwaitedRankIsGone() throws {
        // Rank 1 arrives late: rank 0 stalls at its deadline, naming rank 1, and every later collective throws too.
        let start = Date()
        let late = InProcessWorld.run(ranks: 2, timeoutSeconds: 0.3) { world -> Void in
            world.activity = .step(7)
            if world.rank == 1 { Thread.sleep(forTimeInterval: 1) }
            try world.barrier()
        }
        XCTAssertThrowsError(try late[0].get()) { error in
            XCTAssertEqual(String(describing: error), "rank 1 stalled at step 7: no progress for 0.3 s; stopping the job")
        }
        XCTAssertThrowsError(try late[1].get())
        XCTAssertLessThan(Date().timeIntervalSince(start), 10)
        let sticky = InProcessWorld.run(ranks: 2, timeoutSeconds: 0.2) { world -> Void in
            if world.rank == 0 {
                XCTAssertThrowsError(try world.barrier()) { XCTAssertTrue($0 is CollectiveStalled, "\($0)") }
                XCTAssertThrowsError(try world.allreduceMax(1)) { XCTAssertTrue($0 is CollectiveStalled, "\($0)") }
            } else {
                Thread.sleep(forTimeInterval: 0.6)
            }
        }
        XCTAssertNoThrow(try sticky[1].get())
        // A rank that returns without joining: the other throws at once, long before its deadline.
        let early = Date()
        let gone = InProcessWorld.run(ranks: 3, timeoutSeconds: 60) { world -> Void in
            if world.rank != 2 { try world.barrier() }
        }
        XCTAssertLessThan(Date().timeIntervalSince(early), 10)
        for result in gone.prefix(2) {
            // Rank 2 left first; a rank may also learn it from the other waiting rank having left since.
            XCTAssertThrowsError(try result.get()) { XCTAssertTrue("\($0)".contains("ended without joining this barrier"), "\($0)") }
        }
        XCTAssertNoThrow(try gone[2].get())
        // A ring whose previous rank is gone.
        let broken = InProcessWorld.run(ranks: 2, timeoutSeconds: 60) { world -> Void in
            guard world.rank == 0 else { return }
            var values: [Float] = [1, 2]
            let ring = world.ringSum(capacity: 2, tag: 0)
            try values.withUnsafeMutableBytes { try ring.start($0.baseAddress!, count: 2, of: .float) }
            try ring.wait()
        }
        XCTAssertThrowsError(try broken[0].get()) { XCTAssertTrue("\($0)".contains("rank 1 ended"), "\($0)") }
    }

    func testAbortEndsTheRankAndEveryWaitOfTheOthers() throws {
        let results = InProcessWorld.run(ranks: 3, timeoutSeconds: 60) { world -> Int in
            if world.rank == 1 { world.abort(status: 2) }
            try world.barrier()
            return 0
        }
        for result in results {
            XCTAssertThrowsError(try result.get()) { error in
                XCTAssertEqual((error as? InProcessAbort).map { [$0.rank, Int($0.status)] }, [1, 2])
            }
        }
    }
}
