import Distributed
import Formats
import Kernels
import NeuralNet
import Support

/// One rank per node: the gradient goes out between nodes in buckets as back-propagation completes them (last layer
/// first), each a non-blocking ring allreduce that the main thread progresses (MPI_Test) between layers, so only the last
/// bucket's transfer remains exposed; optionally compressed (bfloat16, or PowerSGD's low-rank factors, which send
/// their own messages).
final class BucketedReduction: WholeBufferReduction, BackwardListener, CustomStringConvertible {
    let network: Network
    let group: Communicator
    /// How rows are cut: as the plain allreduce does.
    private let rows: FloatAllreduce
    /// Parameter ranges sent together, in the order back-propagation completes them.
    private let buckets: [Range<Int>]
    /// For each layer, the bucket its gradient completes (nil if the bucket goes on below it).
    private let completesBucket: [Int?]
    private let pending: [RingSum]
    /// The whole gradient in bfloat16 (bf16 compression).
    private let bfloat16Gradients: UnsafeMutableBufferPointer<UInt16>?
    private let powerSGD: PowerSGD?
    /// The first MPI error met inside a backward callback (which cannot throw), thrown by `finish`.
    private var failure: Error?

    /// `state` is rank 0's saved compression state from a checkpoint (empty otherwise); every rank calls it.
    init(network: Network, communicator: Communicator, group: Communicator, options: ReductionOptions,
         state: [TensorRecord] = [], shares: BatchShares? = nil) throws {
        self.network = network
        self.group = group
        rows = FloatAllreduce(network: network, communicator: communicator, shares: shares)
        let compression = options.compression
        if compression == .powersgd {
            powerSGD = try PowerSGD(network: network, approximationRank: options.approximationRank, group: group, seed: options.seed,
                                    state: state)
            // PowerSGD sends its own messages as back-propagation finishes layers.
            buckets = []
            completesBucket = Array(repeating: nil, count: network.layers.count)
        } else {
            powerSGD = nil
            (buckets, completesBucket) = BucketedReduction.buckets(of: network, bytes: options.bucketBytes)
        }
        pending = buckets.enumerated().map { group.ringSum(capacity: $1.count, tag: $0) }
        bfloat16Gradients = compression == .bf16 ? .allocate(capacity: network.parameterCount) : nil
    }

    deinit { bfloat16Gradients?.deallocate() }

    /// Layers grouped from the last one down until a group holds at least `bytes` (each layer alone at 0).
    static func buckets(of network: Network, bytes: Int) -> (buckets: [Range<Int>], completing: [Int?]) {
        var buckets: [Range<Int>] = [], completing = [Int?](repeating: nil, count: network.layers.count)
        var end = network.parameterCount
        for index in network.layers.indices.reversed() {
            let start = index == 0 ? 0 : network.layers[index].weightOffset  // the first layer's bucket holds the tables
            if (end - start) * 4 >= bytes || index == 0 {
                completing[index] = buckets.count
                buckets.append(start..<end)
                end = start
            }
        }
        return (buckets, completing)
    }

    var description: String {
        if let powerSGD {
            return "one rank per node, \(group.size) nodes, PowerSGD rank \(powerSGD.approximationRank) "
                + "(\(powerSGD.matrices.count) matrices compressed), \(powerSGD.messages.count) message(s) overlapped with backward"
        }
        return "one rank per node, \(group.size) nodes, \(bfloat16Gradients == nil ? "float" : "bfloat16"), "
            + "\(buckets.count) bucket(s) overlapped with backward"
    }

    func localRows(ofBatch count: Int) -> Range<Int> { rows.localRows(ofBatch: count) }

    func rowCapacity(batchSize: Int) -> Int { rows.rowCapacity(batchSize: batchSize) }

    func backward(_ pass: BackwardPass) -> Bool {
        powerSGD?.takeErrorFeedback()
        pass.run(0..<pass.rows, listener: powerSGD ?? self)
        return true
    }

    func parameterGradientsReady(of network: Network, layer index: Int) {
        guard failure == nil else { return }
        do {
            if let bucket = completesBucket[index] { try start(bucket) }
            for sum in pending where sum.inFlight { try sum.test() }
        } catch {
            failure = error
        }
    }

    /// Starts bucket `index`'s allreduce (after rounding it to bfloat16 when compressing).
    private func start(_ index: Int) throws {
        let range = buckets[index], gradients = network.gradients.baseAddress! + range.lowerBound
        if let bfloat16Gradients {
            let target = bfloat16Gradients.baseAddress! + range.lowerBound
            convertToBFloat16(gradients, target, count: range.count)
            try pending[index].start(target, count: range.count, of: .bfloat16)
        } else {
            try pending[index].start(gradients, count: range.count, of: .float)
        }
    }

    func finish() throws {
        if let failure {
            self.failure = nil
            throw failure
        }
        for (index, range) in buckets.enumerated() {
            try pending[index].wait()
            if let bfloat16Gradients {
                convertFromBFloat16(bfloat16Gradients.baseAddress! + range.lowerBound, network.gradients.baseAddress! + range.lowerBound,
                                    count: range.count)
            }
        }
        try powerSGD?.finish()
    }

    /// With PowerSGD, the compressed matrices rebuilt first (the optimizer step does not need them to be).
    var reducedGradients: UnsafeMutablePointer<Float> {
        powerSGD?.formGradients()
        return network.gradients.baseAddress!
    }

    /// With PowerSGD, each compressed matrix rebuilt a few rows at a time as the optimizer reaches it.
    func updateGradients(scaledBy scale: Float?) -> GradientSource {
        powerSGD.map { PowerSGDGradients(powerSGD: $0, scale: scale) } ?? GradientBuffer(reducedGradients, scaledBy: scale)
    }

    /// With PowerSGD, from the factors (no pass over the rebuilt gradient); otherwise `sumOfSquares` of it all.
    func gradientNorm(threads: Int) throws -> Double {
        powerSGD?.gradientNorm() ?? wholeGradientNorm(threads: threads)
    }

    func checkpointState(optimizer: Optimizer) throws -> [TensorRecord] {
        try powerSGD?.checkpointState() ?? []
    }
}
