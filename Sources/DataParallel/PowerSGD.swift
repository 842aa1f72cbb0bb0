import Distributed
import Foundation
import Formats
import Kernels
import NeuralNet
import Support

/// PowerSGD gradient compression (Vogels, Karimireddy, Jaggi 2019, "PowerSGD: Practical Low-Rank Gradient
/// Compression for Distributed Optimization"), as PyTorch's `powerSGD_hook` does it:
///
/// for each large weight gradient M [n×m] (this rank's plus its error feedback e): P = M·Q, allreduce P (with the
/// uncompressed values), orthonormalize P's columns, Q = Mᵀ·P, allreduce Q; the reduced gradient is P·Qᵀ (the sum's
/// projection on span P), and e = M − P·Qᵀ / ranks is kept for the next step. Q is the warm start of the next step.
/// Biases and small matrices (a side below 32, or factors above a quarter of the matrix, such as a 10-wide output
/// layer) go uncompressed. Bytes sent per step: r·(n + m) per compressed matrix instead of n·m.
///
/// Overlapped with back-propagation: each weight gradient is added straight into its error buffer (so M needs no
/// pass of its own), projected as soon as its layer is done, and its P goes out in a non-blocking ring sum with the
/// uncompressed values finished since the previous one, while the layers below are computed. Before each layer's
/// product, a P sum already in starts its matrix's Q sum, which then also overlaps back-propagation. `finish` takes
/// the other P sums as they arrive, starts their Q sums and waits for them. No pass rebuilds the gradients: the
/// optimizer step reads each matrix a few rows at a time, rebuilt (and its error feedback taken) just before their
/// update (`PowerSGDGradients`), so the rebuilt gradient is never written out whole and read back.
final class PowerSGD: BackwardListener {
    /// One compressed weight gradient: rows n = outputWidth, columns m = inputWidth.
    struct Matrix {
        let layer: Int, offset: Int, rows: Int, columns: Int
        /// Offsets of its Qᵀ [r×m] in the Q buffer and of its error e [n×m] (forward layer order, as checkpoints
        /// store them), and of its Pᵀ [r×n] in the P buffer.
        let q: Int, error: Int
        var p = 0
    }

    /// One ring sum of the first round: a matrix's P factors (if any), then the uncompressed values back-propagation
    /// finished since the previous message.
    struct Message {
        let matrix: Int?
        /// Where it sits in the P buffer, and how many factors lead it.
        let start: Int, factors: Int
        let uncompressed: [Range<Int>]
        var count: Int { factors + uncompressed.reduce(0) { $0 + $1.count } }
    }

    /// The rank r of the factors (columns of P and Q), not a process rank.
    let approximationRank: Int
    /// In forward layer order.
    let matrices: [Matrix]
    /// In the order back-propagation completes them (last layer first).
    let messages: [Message]
    let network: Network
    private let group: Communicator
    /// Each layer's compressed matrix, if any.
    private let matrixOfLayer: [Int?]
    /// Each layer's message, if finishing the layer completes one.
    private let messageOfLayer: [Int?]
    private let pRings: [RingSum], qRings: [RingSum]
    /// [P factors | uncompressed values] of every message, in message order.
    private let pMessage: UnsafeMutableBufferPointer<Float>
    /// Q factors, transposed ([r×m] each): the messages of the second round and the warm start of the next step.
    private let q: UnsafeMutableBufferPointer<Float>
    /// Error feedback of this rank, every compressed matrix; during a step, M = e + this rank's gradient.
    private let error: UnsafeMutableBufferPointer<Float>
    /// How far each message has come this step.
    private var stages: [Stage]
    /// What the last step made of its summed factors.
    private var formation = Formation.formed
    /// The parameters in order, each range one matrix (its index) or uncompressed values (nil).
    private let regions: [(range: Range<Int>, matrix: Int?)]
    /// Floats of one part's block of rebuilt rows; `blocks` holds one for each part of the largest optimizer pass.
    private let blockCapacity: Int
    private var blocks = UnsafeMutableBufferPointer<Float>(start: nil, count: 0)
    /// The first MPI error met inside a backward callback (which cannot throw), thrown by `finish`.
    private var failure: Error?

    /// A message's progress in a step: its P sum started, its Q sum started (P's sum unpacked), its factors summed.
    private enum Stage { case waiting, pSent, qSent, summed }

    /// The summed factors only; the error feedback taken too (the optimizer read the rebuilt matrices, clipped by
    /// `scale`, block by block); the rebuilt matrices in the network's gradients as well.
    private enum Formation { case factors, errorTaken(scale: Float?), formed }

    /// `state` holds rank 0's saved Q and every rank's error feedback (from a checkpoint), or nothing; every rank
    /// calls it. Its ring sums take the tags from `firstTag` on.
    init(network: Network, approximationRank: Int, group: Communicator, seed: UInt64, state: [TensorRecord],
         firstTag: Int = 0) throws {
        self.approximationRank = approximationRank
        self.network = network
        self.group = group
        var matrices: [Matrix] = [], matrixOfLayer = [Int?](repeating: nil, count: network.layers.count)
        var qCount = 0, errorCount = 0
        for (index, layer) in network.layers.enumerated() {
            let n = layer.outputWidth, m = layer.inputWidth
            guard min(n, m) >= 32 && 4 * approximationRank * (n + m) <= n * m else { continue }
            matrixOfLayer[index] = matrices.count
            matrices.append(Matrix(layer: index, offset: layer.weightOffset, rows: n, columns: m, q: qCount, error: errorCount))
            qCount += m * approximationRank
            errorCount += n * m
        }
        // Messages as back-propagation completes layers; the first layer's also carries the embedding tables.
        var messages: [Message] = [], messageOfLayer = [Int?](repeating: nil, count: network.layers.count)
        var waiting: [Range<Int>] = [], pCount = 0
        for index in network.layers.indices.reversed() {
            let layer = network.layers[index], matrix = matrixOfLayer[index]
            let weights = layer.weightOffset..<layer.biasOffset, bias = layer.biasOffset..<layer.biasOffset + layer.outputWidth
            waiting += matrix == nil ? [weights.lowerBound..<bias.upperBound] : [bias]
            if index == 0 && !network.embeddingParameters.isEmpty { waiting.append(network.embeddingParameters) }
            guard matrix != nil || index == 0 else { continue }
            let factors = matrix.map { matrices[$0].rows * approximationRank } ?? 0
            if let matrix { matrices[matrix].p = pCount }
            messageOfLayer[index] = messages.count
            messages.append(Message(matrix: matrix, start: pCount, factors: factors, uncompressed: waiting))
            pCount += messages.last!.count
            waiting = []
        }
        self.matrices = matrices
        self.messages = messages
        self.matrixOfLayer = matrixOfLayer
        self.messageOfLayer = messageOfLayer
        var regions: [(range: Range<Int>, matrix: Int?)] = [], start = 0
        for (index, matrix) in matrices.enumerated().sorted(by: { $0.element.offset < $1.element.offset }) {
            if start < matrix.offset { regions.append((start..<matrix.offset, nil)) }
            start = matrix.offset + matrix.rows * matrix.columns
            regions.append((matrix.offset..<start, index))
        }
        if start < network.parameterCount { regions.append((start..<network.parameterCount, nil)) }
        self.regions = regions
        blockCapacity = matrices.reduce(8192) { max($0, $1.columns) }
        stages = Array(repeating: .waiting, count: messages.count)
        pRings = messages.enumerated().map { group.ringSum(capacity: $1.count, tag: firstTag + $0) }
        qRings = matrices.enumerated().map {
            group.ringSum(capacity: $1.columns * approximationRank, tag: firstTag + messages.count + $0)
        }
        pMessage = .allocate(capacity: max(1, pCount))
        q = .allocate(capacity: max(1, qCount))
        error = .allocate(capacity: max(1, errorCount))
        error.initialize(repeating: 0)
        // The same pseudo-random start for Q on every rank.
        var generator = SplitMix64(seed: seed, stream: 0x5047_5344)
        for i in 0..<q.count { q[i] = Float(generator.nextNormal()) }
        try restore(state, qCount: qCount, errorCount: errorCount)
    }

    deinit {
        pMessage.deallocate(); q.deallocate(); error.deallocate(); blocks.deallocate()
    }

    /// A compressed layer's weight gradient is added into its error buffer (M = e + g); the rest as usual. Before
    /// the product, P sums already in start their Q sums.
    func parameterGradients(of network: Network, layer index: Int, outputGradient dy: UnsafePointer<Float>,
                            input x: UnsafePointer<Float>, batch: Int) {
        if failure == nil {
            do { try advance() } catch { failure = error }
        }
        let sum = matrixOfLayer[index].map { error.baseAddress! + matrices[$0].error }
        network.writeParameterGradients(layer: index, outputGradient: dy, input: x, batch: batch, addingWeightGradientTo: sum)
    }

    /// Projects a finished layer's M and sends the message it completes; advances the sums in flight.
    func parameterGradientsReady(of network: Network, layer index: Int) {
        guard failure == nil else { return }
        do {
            if let index = messageOfLayer[index] {
                try send(messages[index], on: pRings[index])
                stages[index] = .pSent
            }
            for ring in pRings where ring.inFlight { try ring.test() }
        } catch {
            failure = error
        }
    }

    // pt[r×n] = (M·Q)ᵀ, then the uncompressed values, at message.start
    private func send(_ message: Message, on ring: RingSum) throws {
        let p = pMessage.baseAddress! + message.start, gradients = network.gradients.baseAddress!
        if let index = message.matrix {
            let matrix = matrices[index]
            lowRankProject(error.baseAddress! + matrix.error, rows: matrix.rows, columns: matrix.columns,
                           qt: q.baseAddress! + matrix.q, rank: approximationRank, into: p)
        }
        var packed = message.factors
        for range in message.uncompressed {
            (p + packed).update(from: gradients + range.lowerBound, count: range.count)
            packed += range.count
        }
        try ring.start(p, count: message.count, of: .float)
    }

    /// Completes the step's sums and leaves the compressed sum over the group in the network's gradients.
    func finish() throws {
        if let failure {
            self.failure = nil
            throw failure
        }
        for index in messages.indices where stages[index] == .pSent { try receiveP(index) }
        for index in messages.indices where stages[index] == .qSent { try qRings[messages[index].matrix!].wait() }
        for index in stages.indices { stages[index] = .waiting }
        formation = .factors
    }

    /// Starts the Q sum of each message whose P sum is in, and advances the sums in flight.
    private func advance() throws {
        for index in messages.indices where stages[index] == .pSent {
            if try pRings[index].test() { try receiveP(index) }
        }
        for ring in qRings where ring.inFlight { try ring.test() }
    }

    /// Message `index`'s P sum (complete or awaited here): its uncompressed values go to the gradients; Q = Mᵀ·P
    /// with P's columns orthonormal is sent on, or with no matrix the message is done.
    private func receiveP(_ index: Int) throws {
        try pRings[index].wait()
        let message = messages[index], gradients = network.gradients.baseAddress!
        let p = pMessage.baseAddress! + message.start
        var packed = message.factors
        for range in message.uncompressed {
            (gradients + range.lowerBound).update(from: p + packed, count: range.count)
            packed += range.count
        }
        guard let matrixIndex = message.matrix else {
            stages[index] = .summed
            return
        }
        let matrix = matrices[matrixIndex], qt = q.baseAddress! + matrix.q
        orthonormalize(p, vectors: approximationRank, length: matrix.rows)
        lowRankBackProject(error.baseAddress! + matrix.error, rows: matrix.rows, columns: matrix.columns, pt: p,
                           rank: approximationRank, into: qt)
        try qRings[matrixIndex].start(qt, count: matrix.columns * approximationRank, of: .float)
        stages[index] = .qSent
    }

    /// Rebuilds the matrices into the network's gradients unless they are there (taking the error feedback then too,
    /// unless the optimizer's blocks took it), scaled as the optimizer read them.
    func formGradients() {
        let scale: Float?, share: Float
        switch formation {
        case .formed: return
        case .factors: (scale, share) = (nil, 1 / Float(group.size))
        case .errorTaken(let taken): (scale, share) = (taken, 0)
        }
        let gradients = network.gradients.baseAddress!
        for matrix in matrices {
            lowRankReconstruct(error.baseAddress! + matrix.error, approximation: gradients + matrix.offset, rows: matrix.rows,
                               columns: matrix.columns, pt: pMessage.baseAddress! + matrix.p, qt: q.baseAddress! + matrix.q,
                               rank: approximationRank, share: share)
            if let scale { Kernels.scale(gradients + matrix.offset, count: matrix.rows * matrix.columns, by: scale) }
        }
        formation = .formed
    }

    /// Before the error buffers are read or added to: takes the last step's error feedback if no optimizer step did
    /// (a step that was not taken).
    func takeErrorFeedback() {
        if case .factors = formation { formGradients() }
    }

    /// Before the optimizer's pass over every parameter (`PowerSGDGradients`) in `parts` parts: a block for each.
    func beginPass(over range: Range<Int>, parts: Int) {
        precondition(range == 0..<network.parameterCount, "PowerSGD's ranks step every parameter")
        if blocks.count < parts * blockCapacity {
            blocks.deallocate()
            blocks = .allocate(capacity: parts * blockCapacity)
        }
    }

    /// Part `part` of `parts` of the optimizer's pass: that share of every region, the uncompressed values from the
    /// network's gradients, each matrix's rows rebuilt `blockCapacity` floats at a time into this part's block (its
    /// error feedback taken), scaled and updated while the block is in cache; matrices already formed are read from
    /// the buffer.
    func forEachBlock<Update: GradientUpdate>(inPart part: Int, of parts: Int, scale: Float?, _ update: Update) {
        let gradients = network.gradients.baseAddress!, range = 0..<network.parameterCount
        guard case .factors = formation else {
            GradientBuffer(gradients, scaledBy: scale).forEachBlock(inPart: part, of: parts, of: range, update)
            return
        }
        let block = blocks.baseAddress! + part * blockCapacity, share = 1 / Float(group.size)
        for (range, matrixIndex) in regions {
            guard let matrixIndex else {
                let values = partRange(part, of: parts, of: range)
                if !values.isEmpty { GradientBuffer(gradients, scaledBy: scale).update(values, update) }
                continue
            }
            let matrix = matrices[matrixIndex], rowsPerBlock = blockCapacity / matrix.columns
            let rows = chunkRange(part, of: parts, total: matrix.rows)
            for first in stride(from: rows.lowerBound, to: rows.upperBound, by: rowsPerBlock) {
                let only = first..<min(rows.upperBound, first + rowsPerBlock), count = only.count * matrix.columns
                lowRankReconstruct(error.baseAddress! + matrix.error, approximation: block, rows: matrix.rows,
                                   columns: matrix.columns, pt: pMessage.baseAddress! + matrix.p, qt: q.baseAddress! + matrix.q,
                                   rank: approximationRank, share: share, only: only)
                if let scale { Kernels.scale(block, count: count, by: scale) }
                let start = matrix.offset + only.lowerBound * matrix.columns
                update.update(start..<start + count, gradients: block)
            }
        }
    }

    /// After every part of the optimizer's pass: the error feedback is taken.
    func endPass(scale: Float?) {
        if case .factors = formation { formation = .errorTaken(scale: scale) }
    }

    /// The norm of the reduced gradient after `finish`: the uncompressed values' squares and each matrix's ‖P·Qᵀ‖²
    /// from its factors, so no pass reads the rebuilt gradient; the same bits on every rank (the same P, Q and sums).
    /// A norm beyond Float's range counts as non-finite: the rebuilt gradient may hold an infinity.
    func gradientNorm() -> Double {
        let gradients = network.gradients.baseAddress!
        var total = 0.0
        for message in messages {
            for range in message.uncompressed { total += sumOfSquares(gradients + range.lowerBound, count: range.count) }
        }
        for matrix in matrices {
            total += lowRankSquaredNorm(pt: pMessage.baseAddress! + matrix.p, rows: matrix.rows, qt: q.baseAddress! + matrix.q,
                                        columns: matrix.columns, rank: approximationRank)
        }
        let norm = total.squareRoot()
        return norm < Double(Float.greatestFiniteMagnitude) ? norm : .infinity
    }

    // x [vectors×length]: modified Gram–Schmidt (PyTorch's, ε = 1e-8 against zero vectors), in Double.
    /// Makes the rows of `x` (the columns of P) orthonormal, in order.
    private func orthonormalize(_ x: UnsafeMutablePointer<Float>, vectors: Int, length: Int) {
        for vector in 0..<vectors {
            let v = x + vector * length
            var norm = 0.0
            for i in 0..<length { norm += Double(v[i]) * Double(v[i]) }
            let inverse = Float(1 / (norm.squareRoot() + 1e-8))
            for i in 0..<length { v[i] *= inverse }
            for later in (vector + 1)..<max(vector + 1, vectors) {
                let w = x + later * length
                var dot = 0.0
                for i in 0..<length { dot += Double(v[i]) * Double(w[i]) }
                let projection = Float(dot)
                for i in 0..<length { w[i] -= projection * v[i] }
            }
        }
    }

    /// Q (the same on every rank) and every rank's error feedback, gathered on rank 0 for a checkpoint.
    func checkpointState() throws -> [TensorRecord] {
        takeErrorFeedback()
        var tensors = [TensorRecord(name: "compression.powersgd.q", shape: [q.count], values: Array(q))]
        var received = [Float](repeating: 0, count: error.count)
        for sender in 0..<group.size {
            if group.rank == sender { received = Array(error) }
            try received.withUnsafeMutableBytes { try group.broadcast($0, root: sender) }
            tensors.append(TensorRecord(name: "compression.powersgd.error.\(sender)", shape: [error.count], values: received))
        }
        return group.rank == 0 ? tensors : []
    }

    /// Takes saved state when it fits this layout (same ranks, same factor sizes); otherwise starts from zero error
    /// and a fresh Q, and rank 0 says so.
    private func restore(_ state: [TensorRecord], qCount: Int, errorCount: Int) throws {
        var fits = Int64(0)
        if group.rank == 0, !state.isEmpty {
            let savedQ = state.first { $0.name == "compression.powersgd.q" }
            let errors = state.filter { $0.name.hasPrefix("compression.powersgd.error.") }
            fits = savedQ?.values.count == qCount && errors.count == group.size
                && errors.allSatisfy { $0.values.count == errorCount } ? 1 : 0
            if fits == 0 {
                Diagnostics.note("the checkpoint's PowerSGD state is for another layout or rank; compression restarts "
                    + "from zero error feedback")
            }
        }
        try withUnsafeMutableBytes(of: &fits) { try group.broadcast($0, root: 0) }
        guard fits == 1 else { return }
        if group.rank == 0 { _ = q.update(fromContentsOf: state.first { $0.name == "compression.powersgd.q" }!.values) }
        try group.broadcast(UnsafeMutableRawBufferPointer(q), root: 0)
        var buffer = [Float](repeating: 0, count: errorCount)
        for receiver in 0..<group.size {
            if group.rank == 0 { buffer = state.first { $0.name == "compression.powersgd.error.\(receiver)" }!.values }
            try buffer.withUnsafeMutableBytes { try group.broadcast($0, root: 0) }
            if group.rank == receiver { _ = error.update(fromContentsOf: buffer) }
        }
    }
}

/// The reduced gradient of a PowerSGD step as the optimizer reads it: each compressed matrix rebuilt from its factors
/// a block of rows at a time, just before the block's update.
struct PowerSGDGradients: GradientSource {
    let powerSGD: PowerSGD
    let scale: Float?

    func beginPass(over range: Range<Int>, parts: Int) { powerSGD.beginPass(over: range, parts: parts) }

    func forEachBlock<Update: GradientUpdate>(inPart part: Int, of parts: Int, of range: Range<Int>, _ update: Update) {
        powerSGD.forEachBlock(inPart: part, of: parts, scale: scale, update)
    }

    func endPass() { powerSGD.endPass(scale: scale) }

    func wholeGradients(_ range: Range<Int>) -> UnsafePointer<Float> {
        powerSGD.formGradients()
        return GradientBuffer(powerSGD.network.gradients.baseAddress!, scaledBy: scale).wholeGradients(range)
    }
}
