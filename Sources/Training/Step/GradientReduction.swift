import Distributed
import Kernels
import NeuralNet

/// How each rank's gradient of its own rows becomes the gradient of the global batch on every rank.
///
/// The step calls `backward` (the reduction decides how this rank's rows are cut and may listen to each layer as
/// back-propagation finishes it, last layer first, to start sending early or to sum parameter gradients in its own
/// format), then `finish`, which leaves the global gradient in `network.gradients` before the optimizer step.
/// Implementations own their buffers and allocate nothing per step.
public protocol GradientReduction: AnyObject {
    /// This rank's rows of a global batch of `count` samples: contiguous, and every rank's together cover it once.
    func localRows(ofBatch count: Int) -> Range<Int>
    /// The most rows any rank gets from a batch of at most `batchSize` samples (for sizing buffers once).
    func rowCapacity(batchSize: Int) -> Int
    /// Back-propagates this rank's rows; false if a local value cannot be summed (non-finite or out of range).
    func backward(_ pass: BackwardPass) -> Bool
    /// Completes the reduction: afterwards `network.gradients` holds the global batch's gradient on every rank.
    func finish() throws
}

/// This rank's share of one back-propagation: its rows' inputs and loss gradients after the forward pass.
public struct BackwardPass {
    public let network: Network
    /// Inputs [rows×inputWidth].
    public let input: UnsafePointer<Float>
    /// ∂loss/∂outputs [rows×outputWidth], already scaled for the global batch.
    public let outputGradient: UnsafePointer<Float>
    public let rows: Int

    /// Back-propagates rows `range` of the pass; their gradients overwrite `network.gradients` or go to `listener`.
    public func run(_ range: Range<Int>, listener: BackwardListener? = nil) {
        network.backward(input: input + range.lowerBound * network.inputWidth,
                         outputGradient: outputGradient + range.lowerBound * network.outputWidth,
                         batch: range.count, rowOffset: range.lowerBound, listener: listener)
    }
}

/// The reduction a config asks for.
func makeGradientReduction(for config: TrainingConfig, network: Network, communicator: Communicator,
                           threads: Int) -> GradientReduction {
    if config.training.deterministic {
        return FixedPointGroupReduction(network: network, communicator: communicator, group: config.training.deterministicGroup,
                                        threads: threads)
    }
    return FloatAllreduce(network: network, communicator: communicator)
}

/// One in-place float allreduce of the whole gradient buffer after back-propagation.
final class FloatAllreduce: GradientReduction {
    let network: Network
    let communicator: Communicator

    init(network: Network, communicator: Communicator) {
        self.network = network
        self.communicator = communicator
    }

    func localRows(ofBatch count: Int) -> Range<Int> {
        chunkRange(communicator.rank, of: communicator.size, total: count)
    }

    func rowCapacity(batchSize: Int) -> Int {
        // Rank 0 gets the remainder first, so its share of a full batch is the largest.
        chunkRange(0, of: communicator.size, total: batchSize).count
    }

    func backward(_ pass: BackwardPass) -> Bool {
        pass.run(0..<pass.rows)
        return true
    }

    func finish() throws {
        try communicator.allreduceSum(network.gradients)
    }
}

/// Deterministic mode: ranks get whole groups of `group` samples, each group's gradient is summed exactly in 64-bit
/// fixed point, and the integer sums are allreduced, so no float sum depends on the ranks × threads layout.
final class FixedPointGroupReduction: GradientReduction {
    let network: Network
    let communicator: Communicator
    let group: Int
    let threads: Int
    private let sums: UnsafeMutableBufferPointer<Int64>

    init(network: Network, communicator: Communicator, group: Int, threads: Int) {
        self.network = network
        self.communicator = communicator
        self.group = group
        self.threads = threads
        sums = .allocate(capacity: network.parameterCount)
    }

    deinit { sums.deallocate() }

    func localRows(ofBatch count: Int) -> Range<Int> {
        let groups = chunkRange(communicator.rank, of: communicator.size, total: (count + group - 1) / group)
        return min(count, groups.lowerBound * group)..<min(count, groups.upperBound * group)
    }

    func rowCapacity(batchSize: Int) -> Int {
        // Rank 0 gets the most groups; a short last batch can give another rank as many whole groups.
        min(batchSize, chunkRange(0, of: communicator.size, total: (batchSize + group - 1) / group).count * group)
    }

    func backward(_ pass: BackwardPass) -> Bool {
        if pass.rows == 0 { sums.initialize(repeating: 0) }
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

    func finish() throws {
        try communicator.allreduceSum(sums)
        fixedPointToFloat(sums.baseAddress!, into: network.gradients.baseAddress!, count: network.parameterCount)
    }
}
