import Distributed
import Formats
import Kernels
import NeuralNet
import Support

/// The ranks of one node reduce through memory they share (MPI-3 `MPI_Win_allocate_shared`): each writes its
/// gradient into its own segment, then sums one slice of the parameters over all segments and steps only that
/// slice, so the node runs the optimizer once, split over its ranks, and no gradient is copied through a transport.
/// The parameters themselves live in the shared memory, so a step's updates need no copy either. Between nodes,
/// each rank sums its slice with the ranks of the same node index (a hierarchical allreduce).
///
/// Float mode: rank r's segment r; the slice sums go into segment 0 in rank order (at 2 ranks a + b, the bits of
/// MPI's sum). Deterministic mode: each rank sums its fixed groups in 64-bit fixed point into its segment and the
/// slices are summed as integers, exact in any order, so the guarantee holds on every layout.
final class NodeSharedReduction: GradientReduction, BackwardListener, CustomStringConvertible {
    let network: Network
    let node: Communicator
    let crossNode: Communicator
    let threads: Int
    /// The parameters this rank sums and steps: its slice of `bounds`.
    var updateRange: Range<Int> { bounds[node.rank]..<bounds[node.rank + 1] }
    /// Where each node rank's slice of the parameters starts (node.size + 1 bounds, whole 64-byte blocks).
    private var bounds: [Int]
    /// How the batches are cut; with weights, the slices follow them (`followShares`).
    private let shares: BatchShares?
    /// The world, over which the node ranks' weights are summed, so every node cuts the same slices.
    private let world: Communicator
    let reducedGradients: UnsafeMutablePointer<Float>
    /// How the rows of a batch are cut (the plain reductions' rule for this mode).
    private let rows: GradientReduction
    private let fixedPoint: FixedPointGroupReduction?
    private let memory: SharedMemory
    /// Floats (or Int64s) from one segment to the next: the parameter count rounded up to 64 bytes.
    private let stride: Int
    private let floatSegments: UnsafeMutablePointer<Float>
    private let integerSegments: UnsafeMutablePointer<Int64>
    /// bfloat16 copy of this rank's slice when nodes exchange compressed gradients.
    private let bfloat16Slice: UnsafeMutableBufferPointer<UInt16>?
    /// The norm's partial sums, one per `sumOfSquares` chunk: each rank computes its share of the chunks.
    private let normPartials: UnsafeMutablePointer<Double>
    /// Whether `finish` also sums between nodes (false for the local steps of periodic synchronization).
    var acrossNodes = true

    /// Every rank of the node calls it (after rank 0's parameters were broadcast): maps the node's shared memory and
    /// moves the network's parameters into it.
    init(network: Network, communicator: Communicator, node: Communicator, crossNode: Communicator, deterministicGroup: Int?,
         compression: GradientCompression, threads: Int, shares: BatchShares? = nil) throws {
        self.network = network
        self.node = node
        self.crossNode = crossNode
        self.threads = threads
        let count = network.parameterCount, ranks = node.size
        stride = (count + 15) / 16 * 16
        bounds = (0..<ranks).map { NodeSharedReduction.slice($0, of: ranks, count: count).lowerBound } + [count]
        self.shares = shares
        world = communicator
        // [ranks segments of Float or Int64][reduced Float, deterministic only][parameters Float][norm partials Double]
        let segmentBytes = ranks * stride * (deterministicGroup == nil ? 4 : 8)
        let floatArrays = deterministicGroup == nil ? 1 : 2
        memory = try node.sharedMemory(bytes: segmentBytes + floatArrays * stride * 4 + sumOfSquaresChunkCount(count) * 8)
        floatSegments = memory.base.bindMemory(to: Float.self, capacity: ranks * stride)
        integerSegments = memory.base.assumingMemoryBound(to: Int64.self)
        let floats = (memory.base + segmentBytes).bindMemory(to: Float.self, capacity: floatArrays * stride)
        reducedGradients = deterministicGroup == nil ? floatSegments : floats
        let parameters = floats + (floatArrays - 1) * stride
        normPartials = UnsafeMutableRawPointer(parameters + stride).bindMemory(to: Double.self, capacity: sumOfSquaresChunkCount(count))
        if let group = deterministicGroup {
            let sums = (memory.base + node.rank * stride * 8).bindMemory(to: Int64.self, capacity: stride)
            fixedPoint = FixedPointGroupReduction(network: network, communicator: communicator, group: group, threads: threads,
                                                  sums: sums, shares: shares)
            rows = fixedPoint!
        } else {
            fixedPoint = nil
            rows = FloatAllreduce(network: network, communicator: communicator, shares: shares)
        }
        bfloat16Slice = compression == .bf16 && crossNode.size > 1 && deterministicGroup == nil
            ? .allocate(capacity: shares?.balanced == true ? count : bounds[node.rank + 1] - bounds[node.rank]) : nil
        // Every rank holds rank 0's parameters already; node rank 0 copies them into the shared memory.
        network.useParameterStorage(parameters, copying: node.rank == 0)
        try memory.synchronize()
    }

    deinit { bfloat16Slice?.deallocate() }

    var description: String {
        "node shared memory (\(node.size) ranks per node, each steps 1/\(node.size) of the parameters"
            + (fixedPoint == nil ? "" : ", fixed point") + "), \(crossNode.size) node(s)"
            + (crossNode.size > 1 ? (bfloat16Slice == nil ? ", float between nodes" : ", bfloat16 between nodes") : "")
    }

    func localRows(ofBatch count: Int) -> Range<Int> { rows.localRows(ofBatch: count) }

    func rowCapacity(batchSize: Int) -> Int { rows.rowCapacity(batchSize: batchSize) }

    func backward(_ pass: BackwardPass) -> Bool {
        if let fixedPoint { return fixedPoint.backward(pass) }
        pass.run(0..<pass.rows, listener: self)
        return true
    }

    /// Float mode: this rank's parameter gradients go straight into its segment.
    func parameterGradients(of network: Network, layer index: Int, outputGradient dy: UnsafePointer<Float>,
                            input x: UnsafePointer<Float>, batch: Int) {
        network.writeParameterGradients(layer: index, outputGradient: dy, input: x, batch: batch,
                                        into: floatSegments + node.rank * stride)
    }

    func embeddingGradients(of network: Network, inputGradient dx: UnsafePointer<Float>, input: UnsafePointer<Float>,
                            batch: Int) {
        network.writeEmbeddingGradients(inputGradient: dx, input: input, batch: batch, into: floatSegments + node.rank * stride)
    }

    func finish() throws {
        try memory.synchronize()
        let slice = updateRange, start = slice.lowerBound
        if fixedPoint != nil {
            let sum = integerSegments + start
            // Block by block (in L1), converted right away when this node is the whole world.
            let block = 2048
            for offset in Swift.stride(from: 0, to: slice.count, by: block) {
                let count = min(block, slice.count - offset)
                for rank in 1..<max(1, node.size) {
                    addIntegers(integerSegments + rank * self.stride + start + offset, into: sum + offset, count: count)
                }
                if crossNode.size == 1 { fixedPointToFloat(sum + offset, into: reducedGradients + start + offset, count: count) }
            }
            if crossNode.size > 1 && acrossNodes {
                try crossNode.allreduceSum(sum, count: slice.count, of: .int64)
                fixedPointToFloat(sum, into: reducedGradients + start, count: slice.count)
            }
        } else {
            let sum = floatSegments + start
            for rank in 1..<max(1, node.size) {
                addProduct(floatSegments + rank * stride + start, scaledBy: 1, to: sum, count: slice.count, threads: threads)
            }
            if crossNode.size > 1 && acrossNodes { try sendBetweenNodes(sum, count: slice.count) }
        }
        try memory.synchronize()
    }

    /// Sums this rank's slice with the same slice of every other node (in bfloat16 when compressing).
    private func sendBetweenNodes(_ slice: UnsafeMutablePointer<Float>, count: Int) throws {
        guard let bfloat16Slice else {
            try crossNode.allreduceSum(slice, count: count, of: .float)
            return
        }
        convertToBFloat16(slice, bfloat16Slice.baseAddress!, count: count)
        try crossNode.allreduceSum(bfloat16Slice.baseAddress!, count: count, of: .bfloat16)
        convertFromBFloat16(bfloat16Slice.baseAddress!, slice, count: count)
    }

    /// Each rank squares its share of `sumOfSquares`'s chunks into the shared partials, then every rank adds them all
    /// in chunk order: `sumOfSquares`'s bits over the whole gradient. After the barrier nobody reads the gradient for
    /// the norm any more, so ranks may clip their slices in place.
    func gradientNorm(threads: Int) throws -> Double {
        let count = network.parameterCount, chunks = sumOfSquaresChunkCount(count)
        sumOfSquaresPartials(reducedGradients, count: count, chunks: chunkRange(node.rank, of: node.size, total: chunks),
                             into: normPartials, threads: threads)
        try memory.synchronize()
        return sumOfPartials(normPartials, chunks: chunks).squareRoot()
    }

    func publish() throws { try memory.synchronize() }

    /// Each rank stepped only its slice of the optimizer state: every rank of the node sends its slice to the others.
    func checkpointState(optimizer: Optimizer) throws -> [TensorRecord] {
        let ranks = node.size
        try optimizer.withMutableState { first, second, _ in
            for rank in 0..<ranks {
                let slice = bounds[rank]..<bounds[rank + 1]
                for state in [first, second] where !state.isEmpty {
                    try node.broadcast(UnsafeMutableRawBufferPointer(UnsafeMutableBufferPointer(rebasing: state[slice])), root: rank)
                }
            }
        }
        return []
    }

    /// After the batch shares changed (every rank of the node calls it): each rank's slice of the parameters follows
    /// its share of the rows, so a slow rank also sums and steps fewer parameters. Every rank first sends its slice
    /// of the optimizer state to the others (as for a checkpoint), so any rank can step any slice afterwards; the
    /// updates are elementwise, so who steps a parameter changes no bit.
    func followShares(optimizer: Optimizer) throws {
        guard let weights = shares?.weights else { return }
        _ = try checkpointState(optimizer: optimizer)
        // Node rank r's slice follows the weights of rank r of every node (their sum), so the slices match between nodes.
        var mine = [Double](repeating: 0, count: node.size)
        mine[node.rank] = weights[world.rank]
        try mine.withUnsafeMutableBufferPointer { try world.allreduceSum($0) }
        let blocks = (network.parameterCount + 15) / 16, total = mine.reduce(0, +)
        var sum = 0.0
        bounds = [0]
        for weight in mine {
            sum += weight
            bounds.append(min(network.parameterCount, Int((Double(blocks) * sum / total).rounded()) * 16))
        }
        bounds[node.size] = network.parameterCount
    }

    /// The slice of `count` parameters node rank `rank` of `ranks` sums and steps: whole 64-byte blocks, so no two
    /// ranks write to one cache line.
    static func slice(_ rank: Int, of ranks: Int, count: Int) -> Range<Int> {
        chunkRange(rank, of: ranks, total: count, granule: 16)
    }
}
