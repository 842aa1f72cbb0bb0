import Distributed
import Formats
import Kernels
import NeuralNet
import Support

/// How each rank's gradient of its own rows becomes the gradient of the global batch on every rank.
///
/// The step calls `backward` (the reduction decides how this rank's rows are cut and may listen to each layer as
/// back-propagation finishes it, last layer first, to start sending early or to sum parameter gradients in its own
/// format), then `finish`, which leaves the global gradient in `network.gradients` before the optimizer step.
/// Implementations own their buffers and allocate nothing per step.
public protocol GradientReduction: AnyObject {
    /// This rank's rows of a global batch of `count` samples: contiguous, and every rank's together cover it once.
    func localRows(ofBatch count: Int) -> Range<Int>
    /// How many rows of a batch of `count` samples the reduced gradient is the mean of: all of them, or this node's
    /// share in the local steps of periodic synchronization.
    func meanRows(ofBatch count: Int) -> Int
    /// The most rows any rank gets from a batch of at most `batchSize` samples (for sizing buffers once).
    func rowCapacity(batchSize: Int) -> Int
    /// Back-propagates this rank's rows; false if a local value cannot be summed (non-finite or out of range).
    func backward(_ pass: BackwardPass) -> Bool
    /// Completes the reduction: afterwards `reducedGradients` holds the global batch's gradient on every rank.
    func finish() throws
    /// Where the global gradient is after `finish` (formed there if the reduction holds it otherwise); by default
    /// `network.gradients`.
    var reducedGradients: UnsafeMutablePointer<Float> { get }
    /// The global gradient as the optimizer step reads it, multiplied by `scale` (clipping) when given; by default
    /// `reducedGradients`, scaled in place.
    func updateGradients(scaledBy scale: Float?) -> GradientSource
    /// The global gradient's norm over all of it, in the fixed chunk order of `sumOfSquares`, so the same bits on
    /// every rank; afterwards this rank may scale its `updateRange` of the gradient in place (clipping).
    func gradientNorm(threads: Int) throws -> Double
    /// The parameters this rank's optimizer step updates (the node's other ranks update the rest); by default all.
    var updateRange: Range<Int> { get }
    /// After this rank's optimizer step: the node's parameters are complete and visible to all its ranks.
    func publish() throws
    /// After the batch shares changed (every rank calls it): the parameters this rank steps may follow its share.
    func followShares(optimizer: Optimizer) throws
    /// Before a checkpoint (every rank calls it): brings the optimizer state of every slice to rank 0 and returns
    /// the reduction's own state to save with it (e.g. compression state); by default nothing.
    func checkpointState(optimizer: Optimizer) throws -> [TensorRecord]
}

extension GradientReduction {
    func meanRows(ofBatch count: Int) -> Int { count }
    func updateGradients(scaledBy scale: Float?) -> GradientSource { GradientBuffer(reducedGradients, scaledBy: scale) }
    func publish() throws {}
    func followShares(optimizer: Optimizer) throws {}
    func checkpointState(optimizer: Optimizer) throws -> [TensorRecord] { [] }
}

/// The reductions that leave the gradient in their network's own buffer and step every parameter on every rank.
protocol WholeBufferReduction: GradientReduction {
    var network: Network { get }
}

extension WholeBufferReduction {
    var reducedGradients: UnsafeMutablePointer<Float> { network.gradients.baseAddress! }
    var updateRange: Range<Int> { 0..<network.parameterCount }
    func gradientNorm(threads: Int) throws -> Double { wholeGradientNorm(threads: threads) }

    /// `sumOfSquares` over the whole reduced gradient (the default norm, which reductions with a cheaper one fall
    /// back to).
    func wholeGradientNorm(threads: Int) -> Double {
        sumOfSquares(reducedGradients, count: network.parameterCount, threads: threads).squareRoot()
    }
}

/// This rank's share of one back-propagation: its rows' inputs and loss gradients after the forward pass.
public struct BackwardPass {
    let network: Network
    /// Inputs [rows×inputWidth].
    let input: UnsafePointer<Float>
    /// ∂loss/∂outputs [rows×outputWidth], already scaled for the global batch.
    let outputGradient: UnsafePointer<Float>
    let rows: Int

    /// Back-propagates rows `range` of the pass; their gradients overwrite `network.gradients` or go to `listener`.
    func run(_ range: Range<Int>, listener: BackwardListener? = nil) {
        network.backward(input: input + range.lowerBound * network.inputWidth,
                         outputGradient: outputGradient + range.lowerBound * network.outputWidth,
                         batch: range.count, rowOffset: range.lowerBound, listener: listener)
    }
}

/// How gradients are sent between nodes.
public enum GradientCompression: String, CaseIterable, Sendable {
    /// Float32, exact sums.
    case none
    /// bfloat16: half the bytes, each sum rounded to 8 significant bits.
    case bf16
    /// PowerSGD (Vogels et al. 2019): rank-r factors of each large weight gradient, error feedback.
    case powersgd
}

/// How the ranks' gradients are combined: what `makeGradientReduction` chooses from.
public struct ReductionOptions: Equatable, Sendable {
    /// Ranks on one node reduce through shared memory and each steps its slice of the parameters.
    var sharedMemory: Bool
    /// Between nodes, gradients go out in buckets of about this many bytes as back-propagation finishes them.
    var bucketBytes: Int
    /// What goes over the links between nodes: float gradients, bf16 ones or PowerSGD's factors.
    var compression: GradientCompression
    /// The rank r of PowerSGD's factors (not a process rank).
    var approximationRank: Int
    /// Deterministic mode's samples per fixed group; nil for float sums.
    var deterministicGroup: Int?
    /// Seeds PowerSGD's first factors.
    var seed: UInt64
    /// Each rank's share of a batch may follow its speed (`ShareBalance`), so buffers fit the largest share.
    var balance: Bool

    /// Options as a config resolves them.
    public init(sharedMemory: Bool, bucketBytes: Int, compression: GradientCompression, approximationRank: Int,
                deterministicGroup: Int?, seed: UInt64, balance: Bool = false) {
        (self.sharedMemory, self.bucketBytes, self.compression) = (sharedMemory, bucketBytes, compression)
        (self.approximationRank, self.deterministicGroup, self.seed) = (approximationRank, deterministicGroup, seed)
        self.balance = balance
    }
}

extension BatchShares {
    /// Even shares of `communicator`'s ranks in the units `options` sum in (deterministic groups, else rows).
    public convenience init(_ options: ReductionOptions, communicator: Communicator) {
        self.init(communicator, unit: options.deterministicGroup ?? 1, balanced: options.balance)
    }
}

/// The reduction `options` ask for; every rank calls it (it may group the ranks by node, a collective).
///
/// Several ranks on a node (the same number on every node): through the node's shared memory, then between nodes.
/// One rank per node: bucketed and overlapped with back-propagation, optionally compressed. Otherwise (one rank,
/// or nodes with different rank counts) the plain reductions. Every one cuts the batches as `shares` says (by default
/// evenly, in the units of `options`).
public func makeGradientReduction(_ options: ReductionOptions, network: Network, communicator: Communicator,
                                  threads: Int, state: [TensorRecord] = [], shares: BatchShares? = nil) throws
    -> GradientReduction {
    let deterministicGroup = options.deterministicGroup
    let shares = shares ?? BatchShares(options, communicator: communicator)
    if communicator.size > 1 {
        let (node, crossNode) = try communicator.nodeGroups(sharedMemory: options.sharedMemory)
        let uniform = try communicator.allreduceMin(Int64(node.size)) == communicator.allreduceMax(Int64(node.size))
        if uniform && node.size > 1 {
            if options.compression == .powersgd && crossNode.size > 1 {
                throw AgreedUserError("distributed.gradient_compression powersgd needs one rank per node (launch/train's "
                    + "default layout; \(node.size) ranks share a node here) or distributed.shared_memory false")
            }
            return try NodeSharedReduction(network: network, communicator: communicator, node: node, crossNode: crossNode,
                                           deterministicGroup: deterministicGroup, compression: options.compression,
                                           threads: threads, shares: shares)
        }
        if uniform && deterministicGroup == nil
            && (options.compression != .none || options.bucketBytes < network.parameterCount * 4) {
            return try BucketedReduction(network: network, communicator: communicator, group: crossNode, options: options,
                                         state: state, shares: shares)
        }
    }
    if let group = deterministicGroup {
        return FixedPointGroupReduction(network: network, communicator: communicator, group: group, threads: threads,
                                        shares: shares)
    }
    return FloatAllreduce(network: network, communicator: communicator, shares: shares)
}

/// One in-place float allreduce of the whole gradient buffer after back-propagation.
final class FloatAllreduce: WholeBufferReduction, CustomStringConvertible {
    let network: Network
    let communicator: Communicator
    /// How the rows of a batch are cut.
    let shares: BatchShares

    init(network: Network, communicator: Communicator, shares: BatchShares? = nil) {
        self.network = network
        self.communicator = communicator
        self.shares = shares ?? BatchShares(communicator)
    }

    func localRows(ofBatch count: Int) -> Range<Int> { shares.localRows(ofBatch: count) }

    func rowCapacity(batchSize: Int) -> Int { shares.rowCapacity(batchSize: batchSize) }

    func backward(_ pass: BackwardPass) -> Bool {
        pass.run(0..<pass.rows)
        return true
    }

    func finish() throws {
        try communicator.allreduceSum(network.gradients)
    }

    var description: String { "one float allreduce over \(communicator.size) ranks" }
}

/// Deterministic mode: ranks get whole groups of `group` samples, each group's gradient is summed exactly in 64-bit
/// fixed point, and the integer sums are allreduced, so no float sum depends on the ranks × threads layout.
///
/// Back-propagation runs once over all of the rank's rows; each layer's weight gradient is one GEMM whose epilogue
/// adds every group's tile into the sums (`denseWeightGradientFixedPoint`), with the bits of one backward pass and
/// one `accumulateFixedPoint` per group (the earlier form, still used for groups deeper than a GEMM block).
final class FixedPointGroupReduction: WholeBufferReduction, BackwardListener, CustomStringConvertible {
    let network: Network
    let communicator: Communicator
    let group: Int
    let threads: Int
    /// How the rows of a batch are cut: in whole groups.
    let shares: BatchShares
    private let sums: UnsafeMutableBufferPointer<Int64>
    private let ownsSums: Bool
    /// Whether every value of this step's backward pass so far could be summed.
    private var summable = true
    /// One rank with sums of its own: nothing to allreduce, so the weight GEMMs write the Float gradient themselves.
    private var writesFloats: Bool { ownsSums && communicator.size == 1 }

    /// Sums into `sums` (parameterCount values, e.g. this rank's part of a node's shared memory) when given; the
    /// batches are cut as `shares` says (their unit must be `group`), by default evenly.
    init(network: Network, communicator: Communicator, group: Int, threads: Int, sums: UnsafeMutablePointer<Int64>? = nil,
         shares: BatchShares? = nil) {
        precondition(shares.map { $0.unit == group } ?? true, "the shares of fixed-point groups move whole groups")
        self.shares = shares ?? BatchShares(communicator, unit: group)
        self.network = network
        self.communicator = communicator
        self.group = group
        self.threads = threads
        ownsSums = sums == nil
        self.sums = sums.map { UnsafeMutableBufferPointer(start: $0, count: network.parameterCount) }
            ?? .allocate(capacity: network.parameterCount)
    }

    deinit { if ownsSums { sums.deallocate() } }

    func localRows(ofBatch count: Int) -> Range<Int> { shares.localRows(ofBatch: count) }

    func rowCapacity(batchSize: Int) -> Int { shares.rowCapacity(batchSize: batchSize) }

    func backward(_ pass: BackwardPass) -> Bool {
        if pass.rows == 0 { sums.initialize(repeating: 0) }
        if group <= fixedPointGemmMaximumGroup {
            summable = true
            if pass.rows > 0 { pass.run(0..<pass.rows, listener: self) }
            return summable
        }
        var summable = true
        var start = 0
        while start < pass.rows {
            let rows = start..<min(pass.rows, start + group)
            pass.run(rows)
            // The first group overwrites the sums, which saves zeroing them.
            summable = accumulateFixedPoint(network.gradients.baseAddress!, into: sums.baseAddress!,
                                            count: network.parameterCount, threads: threads, replacing: start == 0) && summable
            start = rows.upperBound
        }
        return summable
    }

    // Layer `index`'s weights and biases: every group's gradient straight into the fixed-point sums.
    func parameterGradients(of network: Network, layer index: Int, outputGradient dy: UnsafePointer<Float>,
                            input x: UnsafePointer<Float>, batch: Int) {
        let layer = network.layers[index]
        summable = denseWeightGradientFixedPoint(
            outputGradient: dy, input: x, weightSums: sums.baseAddress! + layer.weightOffset,
            biasSums: sums.baseAddress! + layer.biasOffset, batch: batch, group: group, inputWidth: layer.inputWidth,
            outputWidth: layer.outputWidth, threads: threads, replacing: true,
            weightGradient: writesFloats ? network.gradients.baseAddress! + layer.weightOffset : nil) && summable
    }

    // The tables: each row's looked-up gradient added in fixed point at its level, exact in any order or grouping.
    func embeddingGradients(of network: Network, inputGradient dx: UnsafePointer<Float>, input: UnsafePointer<Float>,
                            batch: Int) {
        let range = network.embeddingParameters
        (sums.baseAddress! + range.lowerBound).update(repeating: 0, count: range.count)
        var summable = true
        network.forEachEmbeddingGradient(inputGradient: dx, input: input, batch: batch) { table, code, values in
            summable = accumulateFixedPoint(values, into: sums.baseAddress! + table.offset + code * table.dimension,
                                            count: table.dimension) && summable
        }
        self.summable = summable && self.summable
        if writesFloats && group <= fixedPointGemmMaximumGroup {
            fixedPointToFloat(sums.baseAddress! + range.lowerBound, into: network.gradients.baseAddress! + range.lowerBound,
                              count: range.count)
        }
    }

    var description: String { "fixed-point groups of \(group), one Int64 allreduce over \(communicator.size) ranks" }

    func finish() throws {
        if writesFloats && group <= fixedPointGemmMaximumGroup {
            for layer in network.layers {  // the weights are already Float
                fixedPointToFloat(sums.baseAddress! + layer.biasOffset, into: network.gradients.baseAddress! + layer.biasOffset,
                                  count: layer.outputWidth)
            }
            return
        }
        try communicator.allreduceSum(sums)
        fixedPointToFloat(sums.baseAddress!, into: network.gradients.baseAddress!, count: network.parameterCount)
    }
}
