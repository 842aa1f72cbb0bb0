@testable import DataParallel
@testable import Distributed
import Formats
import Foundation
import Kernels
import NeuralNet
import XCTest

/// The gradient reductions of several ranks, as threads of this process: node shared memory, buckets of ring sums,
/// bfloat16 and PowerSGD between nodes, fixed point, each against the plain float allreduce or a reference.
final class ReductionTests: XCTestCase {
    /// 26 rows: uneven over 3 and 4 ranks; in deterministic mode 7 groups of 4, the last short.
    let batch = 26

    /// The layers of the network every rank builds; by default the middle one is PowerSGD-sized (36×40).
    var layers: [(Int, Activation)] = [(40, .relu), (36, .tanh), (4, .identity)]

    /// The network every rank builds (the same weights everywhere).
    func makeNetwork() -> Network {
        let network = Network(inputWidth: 7, layers: layers, threads: 1)
        network.initialize(weights: .heUniform, biasValue: 0.1, seed: 3)
        return network
    }

    /// Inputs and ∂loss/∂outputs of the global batch of step `step` (already scaled for the batch), on every layout.
    func globalBatch(step: Int) -> (input: [Float], outputGradient: [Float]) {
        var generator = SplitMix64(seed: 17, stream: UInt64(step))
        let input = (0..<(batch * 7)).map { _ in Float(generator.nextUnitDouble() * 2 - 1) }
        let outputGradient = (0..<(batch * 4)).map { _ in Float(generator.nextUnitDouble() - 0.5) / Float(batch) }
        return (input, outputGradient)
    }

    func options(sharedMemory: Bool = true, bucketBytes: Int = 1 << 30, compression: GradientCompression = .none,
                 deterministicGroup: Int? = nil) -> ReductionOptions {
        ReductionOptions(sharedMemory: sharedMemory, bucketBytes: bucketBytes, compression: compression, approximationRank: 2,
                         deterministicGroup: deterministicGroup, seed: 9)
    }

    /// What one rank saw: the reduced gradient after each step, its own rows' gradient (before reduction) of each
    /// step, the reduction's description, and what it saves in a checkpoint.
    struct RankRun {
        var reduced: [[Float]] = []
        /// The reduction's norm of each step's reduced gradient.
        var norms: [Double] = []
        var local: [[Float]] = []
        var description = ""
        var state: [TensorRecord] = []
    }

    /// Runs `steps` steps' reductions on `ranks` in-process ranks, `ranksPerNode` to a node (1×1: the world of one),
    /// the batch shared by `weights` (nil: evenly).
    func run(ranks: Int, ranksPerNode: Int = 1, _ options: ReductionOptions, steps: Int = 1,
             weights: [Double]? = nil) throws -> [RankRun] {
        let body = { (world: Communicator) throws -> RankRun in
            let network = self.makeNetwork()
            let shares = BatchShares(options, communicator: world)
            shares.setWeights(weights)
            let reduction = try makeGradientReduction(options, network: network, communicator: world, threads: 1,
                                                      shares: shares)
            var run = RankRun(description: String(describing: reduction))
            for step in 0..<steps {
                let (input, outputGradient) = self.globalBatch(step: step)
                let rows = reduction.localRows(ofBatch: self.batch)
                try input.withUnsafeBufferPointer { input in
                    try outputGradient.withUnsafeBufferPointer { outputGradient in
                        let x = input.baseAddress! + rows.lowerBound * 7, dy = outputGradient.baseAddress! + rows.lowerBound * 4
                        _ = network.forward(input: x, batch: rows.count)
                        network.backward(input: x, outputGradient: dy, batch: rows.count)
                        run.local.append(Array(network.gradients))
                        XCTAssertTrue(reduction.backward(BackwardPass(network: network, input: x, outputGradient: dy, rows: rows.count)))
                        try reduction.finish()
                    }
                }
                run.reduced.append(Array(UnsafeBufferPointer(start: reduction.reducedGradients, count: network.parameterCount)))
                run.norms.append(try reduction.gradientNorm(threads: 1))
                try reduction.publish()
            }
            run.state = try reduction.checkpointState(optimizer: Optimizer(settings: OptimizerOptions(kind: .sgd),
                                                                         parameterCount: network.parameterCount))
            return run
        }
        if ranks == 1 { return [try body(InProcessCommunicator())] }
        return try InProcessWorld.run(ranks: ranks, ranksPerNode: ranksPerNode, timeoutSeconds: 60, body).map { try $0.get() }
    }

    /// The plain float allreduce's result on `ranks` ranks (buckets too large to split, no shared memory).
    func plain(ranks: Int) throws -> [Float] {
        let runs = try run(ranks: ranks, options(sharedMemory: false))
        XCTAssertTrue(runs[0].description.hasPrefix("one float allreduce over \(ranks) ranks"), runs[0].description)
        return runs[0].reduced[0]
    }

    func assertSameOnEveryRank(_ runs: [RankRun], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        for run in runs.dropFirst() {
            XCTAssertEqual(run.reduced, runs[0].reduced, what, file: file, line: line)
            XCTAssertEqual(run.norms, runs[0].norms, "\(what): the norm", file: file, line: line)
        }
        // Every reduction's norm is the norm of what it reduced, however it is computed.
        for (reduced, norm) in zip(runs[0].reduced, runs[0].norms) {
            let expected = reduced.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            XCTAssertEqual(norm, expected, accuracy: 1e-5 * expected, "\(what): the norm", file: file, line: line)
        }
    }

    func assertClose(_ a: [Float], _ b: [Float], tolerance: Float = 1e-5, _ what: String,
                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        let worst = zip(a, b).map { abs($0 - $1) / max(1e-3, abs($1)) }.max() ?? .infinity
        XCTAssertLessThanOrEqual(worst, tolerance, what, file: file, line: line)
        XCTAssertNotEqual(a, b.map { _ in 0 }, what, file: file, line: line)
    }

    func testNodeSharedMemoryEqualsThePlainAllreduce() throws {
        // 2 ranks on one node: each slice is segment 0 + segment 1 = a + b, MPI's bits at 2 ranks.
        let shared = try run(ranks: 2, ranksPerNode: 2, options())
        XCTAssertTrue(shared[0].description.hasPrefix("node shared memory (2 ranks per node"), shared[0].description)
        assertSameOnEveryRank(shared, "2 ranks on a node")
        XCTAssertEqual(shared[0].reduced[0], try plain(ranks: 2))
        // 2 nodes × 2 ranks: each node's slices a + b, then the two nodes' sums added: (g0 + g1) + (g2 + g3).
        let nodes = try run(ranks: 4, ranksPerNode: 2, options())
        XCTAssertTrue(nodes[0].description.contains("(2 ranks per node, each steps 1/2 of the parameters), 2 node(s), float"),
                      nodes[0].description)
        assertSameOnEveryRank(nodes, "2 nodes x 2 ranks")
        let local = nodes.map { $0.local[0] }
        XCTAssertEqual(nodes[0].reduced[0], local[0].indices.map { (local[0][$0] + local[1][$0]) + (local[2][$0] + local[3][$0]) })
        assertClose(nodes[0].reduced[0], try plain(ranks: 4), "2 nodes x 2 ranks vs the plain allreduce")
        // bfloat16 between nodes: each node's sum rounded to bfloat16, the two added and rounded once more.
        let compressed = try run(ranks: 4, ranksPerNode: 2, options(compression: .bf16))
        XCTAssertTrue(compressed[0].description.hasSuffix("bfloat16 between nodes"), compressed[0].description)
        assertSameOnEveryRank(compressed, "2 nodes x 2 ranks, bfloat16")
        let round = { (value: Float) in floatFromBFloat16(bfloat16Bits(value)) }
        XCTAssertEqual(compressed[0].reduced[0],
                       local[0].indices.map { round(round(local[0][$0] + local[1][$0]) + round(local[2][$0] + local[3][$0])) })
    }

    func testFixedPointIsTheSameOnEveryLayout() throws {
        let deterministic = options(deterministicGroup: 4)
        let single = try run(ranks: 1, deterministic)[0].reduced[0]
        for (ranks, perNode, kind) in [(2, 1, "fixed-point groups"), (3, 1, "fixed-point groups"), (2, 2, "node shared memory"),
                                       (3, 3, "node shared memory"), (4, 2, "node shared memory")] {
            let runs = try run(ranks: ranks, ranksPerNode: perNode, deterministic)
            XCTAssertTrue(runs[0].description.hasPrefix(kind), runs[0].description)
            assertSameOnEveryRank(runs, "\(ranks) ranks, \(perNode) per node")
            XCTAssertEqual(runs[0].reduced[0], single, "\(ranks) ranks, \(perNode) per node")
        }
        assertClose(single, try plain(ranks: 1), tolerance: 1e-4, "fixed point vs float")
    }

    func testBalancedSharesKeepTheBitsOfFixedPoint() throws {
        let deterministic = options(deterministicGroup: 4)
        let even = try run(ranks: 1, deterministic)[0].reduced[0]
        // 7 groups of 4 rows (the last short), cut unevenly by the weights.
        for (ranks, perNode, weights) in [(2, 2, [3.0, 1]), (2, 1, [3.0, 1]), (3, 3, [1.0, 5, 2]), (3, 1, [1.0, 5, 2])] {
            let runs = try run(ranks: ranks, ranksPerNode: perNode, deterministic, steps: 1, weights: weights)
            assertSameOnEveryRank(runs, "\(ranks) ranks, \(perNode) per node, weights \(weights)")
            XCTAssertEqual(runs[0].reduced[0], even, "\(ranks) ranks, \(perNode) per node, weights \(weights)")
        }
        // Float sums of uneven shares are the same gradient up to rounding.
        assertClose(try run(ranks: 2, options(sharedMemory: false), weights: [3, 1])[0].reduced[0], try plain(ranks: 2),
                    "float, weights 3:1")
    }

    func testNodeSlicesFollowTheSharesAndMatchBetweenNodes() throws {
        // 2 nodes of 2 ranks, the second rank of each much slower: its slice of the parameters shrinks alike on both.
        let ranges = try InProcessWorld.run(ranks: 4, ranksPerNode: 2, timeoutSeconds: 60) { world -> [Range<Int>] in
            let network = self.makeNetwork()
            let options = self.options(deterministicGroup: 4)
            let shares = BatchShares(options, communicator: world)
            let reduction = try makeGradientReduction(options, network: network, communicator: world, threads: 1, shares: shares)
            let optimizer = Optimizer(settings: OptimizerOptions(kind: .adam), parameterCount: network.parameterCount)
            let even = reduction.updateRange
            shares.setWeights([3, 1, 3, 1])
            try reduction.followShares(optimizer: optimizer)
            return [even, reduction.updateRange]
        }.map { try $0.get() }
        let count = makeNetwork().parameterCount
        for node in [0, 2] {
            XCTAssertEqual(ranges[node][1].lowerBound, 0)
            XCTAssertEqual(ranges[node][1].upperBound, ranges[node + 1][1].lowerBound)
            XCTAssertEqual(ranges[node + 1][1].upperBound, count)
            XCTAssertEqual(Double(ranges[node][1].count) / Double(count), 0.75, accuracy: 0.02)
            XCTAssertEqual(ranges[node][1].upperBound % 16, 0)
            XCTAssertEqual(ranges[node][0].count, count / 2, accuracy: 16)
        }
        XCTAssertEqual(ranges[0][1], ranges[2][1])
        XCTAssertEqual(ranges[1][1], ranges[3][1])
    }

    func testBucketsEqualOneBuffer() throws {
        // bucket_mb 0: a ring sum per layer, started as back-propagation finishes it.
        let two = try run(ranks: 2, options(sharedMemory: false, bucketBytes: 0))
        XCTAssertTrue(two[0].description.hasSuffix("float, 3 bucket(s) overlapped with backward"), two[0].description)
        assertSameOnEveryRank(two, "2 ranks, buckets")
        XCTAssertEqual(two[0].reduced[0], try plain(ranks: 2))
        let three = try run(ranks: 3, options(sharedMemory: false, bucketBytes: 0))
        assertSameOnEveryRank(three, "3 ranks, buckets")
        assertClose(three[0].reduced[0], try plain(ranks: 3), "3 ranks, buckets vs one buffer")
        // bfloat16 buckets at 2 ranks: bf16(bf16(a) + bf16(b)) for every value.
        let halves = try run(ranks: 2, options(sharedMemory: false, bucketBytes: 0, compression: .bf16))
        let round = { (value: Float) in floatFromBFloat16(bfloat16Bits(value)) }
        XCTAssertEqual(halves[0].reduced[0], zip(halves[0].local[0], halves[1].local[0]).map { round(round($0) + round($1)) })
        assertSameOnEveryRank(halves, "2 ranks, bfloat16 buckets")
    }

    func testPowerSGDAgreesWithItsReferenceAndKeepsWhatItDropped() throws {
        // Two compressed matrices (36×40, 34×36) between uncompressed layers: three messages of the first round
        // (the output layer and 34×36's factors, 36×40's, the first layer's), each overlapped with backward.
        layers = [(40, .relu), (36, .tanh), (34, .relu), (4, .identity)]
        for ranks in [2, 3] { try checkPowerSGD(ranks: ranks) }
    }

    /// The optimizer step reading PowerSGD's matrices a block of rebuilt rows at a time gives the bits of a step from
    /// the gradients rebuilt whole (and clipped in place): the same parameters, Adam moments, error feedback and Q,
    /// and, read afterwards (as histograms do), the same gradients; on one thread and on two (a 180×200 matrix:
    /// each thread's 90 rows in blocks of 20), with and without a clipping scale.
    func testPowerSGDStepsFromBlocksAsFromTheWholeGradient() throws {
        layers = [(200, .relu), (180, .tanh), (4, .identity)]
        for threads in [1, 2] {
            for scale in [nil, Float(0.37)] {
                let whole = try powerSGDSteps(fromBlocks: false, threads: threads, scale: scale)
                let blocks = try powerSGDSteps(fromBlocks: true, threads: threads, scale: scale)
                for rank in 0..<2 {
                    let what = "rank \(rank), threads \(threads), scale \(String(describing: scale))"
                    XCTAssertEqual(blocks[rank].parameters.map(\.bitPattern), whole[rank].parameters.map(\.bitPattern), what)
                    XCTAssertEqual(blocks[rank].moments.map(\.bitPattern), whole[rank].moments.map(\.bitPattern), what)
                    XCTAssertEqual(blocks[rank].gradients.map(\.bitPattern), whole[rank].gradients.map(\.bitPattern), what)
                    XCTAssertEqual(blocks[rank].state.map { $0.values.map(\.bitPattern) }, whole[rank].state.map { $0.values.map(\.bitPattern) }, what)
                }
                XCTAssertNotEqual(whole[0].parameters, makeNetwork().parameters.map { $0 })
            }
        }
    }

    /// Three Adam steps of 2 ranks with PowerSGD rank 2: each rank's parameters, first moments, gradients as read
    /// after the last step, and the checkpoint's compression state.
    func powerSGDSteps(fromBlocks: Bool, threads: Int, scale: Float?) throws
        -> [(parameters: [Float], moments: [Float], gradients: [Float], state: [TensorRecord])] {
        let options = options(sharedMemory: false, compression: .powersgd)
        return try InProcessWorld.run(ranks: 2, ranksPerNode: 1, timeoutSeconds: 60) { world in
            let network = self.makeNetwork(), parameters = network.parameters.baseAddress!
            let reduction = try makeGradientReduction(options, network: network, communicator: world, threads: threads)
            XCTAssertTrue(String(describing: reduction).contains("PowerSGD rank 2 (1 matrices compressed)"))
            let optimizer = Optimizer(settings: OptimizerOptions(kind: .adam, learningRate: 0.01), parameterCount: network.parameterCount)
            for step in 0..<3 {
                let (input, outputGradient) = self.globalBatch(step: step)
                let rows = reduction.localRows(ofBatch: self.batch)
                let x = input.withUnsafeBufferPointer { $0.baseAddress! + rows.lowerBound * 7 }
                let dy = outputGradient.withUnsafeBufferPointer { $0.baseAddress! + rows.lowerBound * 4 }
                _ = network.forward(input: x, batch: rows.count)
                XCTAssertTrue(reduction.backward(BackwardPass(network: network, input: x, outputGradient: dy, rows: rows.count)))
                try reduction.finish()
                if fromBlocks {
                    optimizer.step(parameters: parameters, gradients: reduction.updateGradients(scaledBy: scale), learningRate: 0.01,
                                   threads: threads, range: reduction.updateRange)
                } else {
                    let gradients = reduction.reducedGradients
                    if let scale { Kernels.scale(gradients, count: network.parameterCount, by: scale) }
                    optimizer.step(parameters: parameters, gradients: gradients, learningRate: 0.01, threads: threads)
                }
            }
            let gradients = Array(UnsafeBufferPointer(start: reduction.reducedGradients, count: network.parameterCount))
            let state = try reduction.checkpointState(optimizer: optimizer)
            return (Array(network.parameters), optimizer.firstMoment, gradients, state)
        }.map { try $0.get() }
    }

    func checkPowerSGD(ranks: Int) throws {
        let steps = 3, rank = 2
        let runs = try run(ranks: ranks, options(sharedMemory: false, compression: .powersgd), steps: steps)
        XCTAssertTrue(runs[0].description.contains("PowerSGD rank 2 (2 matrices compressed), 3 message(s)"), runs[0].description)
        assertSameOnEveryRank(runs, "PowerSGD")
        let network = makeNetwork()
        let compressedLayers = [network.layers[1], network.layers[2]]
        let compressed = compressedLayers.map { $0.weightOffset..<$0.weightOffset + $0.outputWidth * $0.inputWidth }
        // The reference: PyTorch's hook in Double, from every rank's own gradients, error feedback included; the
        // pseudo-random start of Q for all matrices in layer order.
        var generator = SplitMix64(seed: 9, stream: 0x5047_5344)
        var qts = compressedLayers.map { layer in
            (0..<(rank * layer.inputWidth)).map { _ in Float(generator.nextNormal()) }.map(Double.init)
        }
        var errors = compressedLayers.map { [[Double]](repeating: [Double](repeating: 0, count: $0.outputWidth * $0.inputWidth), count: ranks) }
        var sent = [[Float]](repeating: [], count: 2), total = [[Double]](repeating: [], count: 2)
        for step in 0..<steps {
            let reduced = runs[0].reduced[step]
            for (index, layer) in compressedLayers.enumerated() {
                let (rows, columns, range) = (layer.outputWidth, layer.inputWidth, compressed[index])
                let m = (0..<ranks).map { r in (0..<(rows * columns)).map { Double(runs[r].local[step][range.lowerBound + $0]) + errors[index][r][$0] } }
                var pt = [Double](repeating: 0, count: rank * rows)
                for r in 0..<ranks { for k in 0..<rank { for i in 0..<rows { for j in 0..<columns {
                    pt[k * rows + i] += m[r][i * columns + j] * qts[index][k * columns + j]
                } } } }
                for k in 0..<rank {  // modified Gram–Schmidt, ε = 1e-8
                    var norm = 0.0
                    for i in 0..<rows { norm += pt[k * rows + i] * pt[k * rows + i] }
                    for i in 0..<rows { pt[k * rows + i] /= norm.squareRoot() + 1e-8 }
                    for later in (k + 1)..<max(k + 1, rank) {
                        var dot = 0.0
                        for i in 0..<rows { dot += pt[k * rows + i] * pt[later * rows + i] }
                        for i in 0..<rows { pt[later * rows + i] -= dot * pt[k * rows + i] }
                    }
                }
                var qt = [Double](repeating: 0, count: rank * columns)
                for r in 0..<ranks { for k in 0..<rank { for i in 0..<rows { for j in 0..<columns {
                    qt[k * columns + j] += m[r][i * columns + j] * pt[k * rows + i]
                } } } }
                qts[index] = qt
                var approximation = [Double](repeating: 0, count: rows * columns)
                for k in 0..<rank { for i in 0..<rows { for j in 0..<columns {
                    approximation[i * columns + j] += pt[k * rows + i] * qt[k * columns + j]
                } } }
                for r in 0..<ranks { errors[index][r] = (0..<(rows * columns)).map { m[r][$0] - approximation[$0] / Double(ranks) } }
                assertClose(range.map { reduced[$0] }, approximation.map(Float.init), tolerance: 1e-3,
                            "\(ranks) ranks, step \(step), matrix \(index): P·Qᵀ")
                sent[index] = range.map { reduced[$0] }
                total[index] = (0..<(rows * columns)).map { i in m.reduce(0) { $0 + $1[i] } }
            }
            // Everything else goes uncompressed: the ring's sum of every rank's value.
            for value in 0..<network.parameterCount where !compressed.contains(where: { $0.contains(value) }) {
                let sum = runs.map { $0.local[step][value] }
                XCTAssertEqual(reduced[value], sum.reduce(0, +), accuracy: 1e-6 * max(1, abs(reduced[value])),
                               "\(ranks) ranks, step \(step), value \(value)")
            }
        }
        // The checkpoint keeps Q and each rank's error feedback (both matrices in layer order), on rank 0 only.
        XCTAssertEqual(runs[0].state.map(\.name), ["compression.powersgd.q"] + (0..<ranks).map { "compression.powersgd.error.\($0)" })
        for run in runs.dropFirst() { XCTAssertEqual(run.state.count, 0) }
        for r in 0..<ranks {
            assertClose(runs[0].state[1 + r].values, errors.flatMap { $0[r] }.map(Float.init), tolerance: 1e-3,
                        "rank \(r)'s error feedback")
        }
        assertClose(runs[0].state[0].values, qts.flatMap { $0 }.map(Float.init), tolerance: 1e-3, "Q")
        // Nothing is lost: the last step's P·Qᵀ plus every rank's error feedback is the sum of what they had to send.
        let sentAll = sent.flatMap { $0 }, totalAll = total.flatMap { $0 }.map(Float.init)
        let kept = (0..<sentAll.count).map { i in sentAll[i] + (0..<ranks).reduce(Float(0)) { $0 + runs[0].state[1 + $1].values[i] } }
        assertClose(kept, totalAll, tolerance: 1e-4, "P·Qᵀ + error feedback")
        XCTAssertNotEqual(sentAll, totalAll)
    }
}
