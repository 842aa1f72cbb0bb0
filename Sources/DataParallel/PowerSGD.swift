import Distributed
import Foundation
import Formats
import Kernels
import NeuralNet
import Support

/// PowerSGD gradient compression (Vogels, Karimireddy, Jaggi 2019, "PowerSGD: Practical Low-Rank Gradient
/// Compression for Distributed Optimization"), as PyTorch's `powerSGD_hook` does it:
///
/// for each large weight gradient M [n×m] (plus this rank's error feedback e): P = M·Q, allreduce P (with every
/// uncompressed value in the same message), orthonormalize P's columns, Q = Mᵀ·P, allreduce Q; the reduced
/// gradient is P·Qᵀ (the sum's projection on span P), and e = M − P·Qᵀ / ranks is kept for the next step.
/// Q is the warm start of the next step. Biases and small matrices (a side below 32, or factors above a quarter
/// of the matrix, such as a 10-wide output layer) go uncompressed. Bytes sent per step: r·(n + m) per compressed
/// matrix instead of n·m.
final class PowerSGD {
    /// One compressed weight gradient: rows n = outputWidth, columns m = inputWidth.
    struct Matrix {
        let offset: Int, rows: Int, columns: Int
        /// Offsets of its Pᵀ [r×n] in the P message, its Qᵀ [r×m] in the Q message, its error e [n×m].
        let p: Int, q: Int, error: Int
    }

    /// The rank r of the factors (columns of P and Q), not a process rank.
    let approximationRank: Int
    let matrices: [Matrix]
    /// Parameter ranges sent as they are (after the P factors in the first message).
    let uncompressed: [Range<Int>]
    private let group: Communicator
    /// [P factors | uncompressed values]
    private let pMessage: UnsafeMutableBufferPointer<Float>
    /// Q factors, transposed ([r×m] each): the message of the second allreduce and the warm start of the next step.
    private let q: UnsafeMutableBufferPointer<Float>
    /// Error feedback of this rank, every compressed matrix.
    private let error: UnsafeMutableBufferPointer<Float>

    /// `state` holds rank 0's saved Q and every rank's error feedback (from a checkpoint), or nothing; every rank calls it.
    init(network: Network, approximationRank: Int, group: Communicator, seed: UInt64, state: [TensorRecord]) throws {
        self.approximationRank = approximationRank
        self.group = group
        var matrices: [Matrix] = [], uncompressed: [Range<Int>] = []
        var pCount = 0, qCount = 0, errorCount = 0
        for layer in network.layers {
            let n = layer.outputWidth, m = layer.inputWidth
            if min(n, m) >= 32 && 4 * approximationRank * (n + m) <= n * m {
                matrices.append(Matrix(offset: layer.weightOffset, rows: n, columns: m, p: pCount, q: qCount, error: errorCount))
                pCount += n * approximationRank
                qCount += m * approximationRank
                errorCount += n * m
                uncompressed.append(layer.biasOffset..<layer.biasOffset + n)
            } else {
                uncompressed.append(layer.weightOffset..<layer.biasOffset + n)
            }
        }
        if !network.embeddingParameters.isEmpty { uncompressed.append(network.embeddingParameters) }
        self.matrices = matrices
        self.uncompressed = uncompressed
        pMessage = .allocate(capacity: pCount + uncompressed.reduce(0) { $0 + $1.count })
        q = .allocate(capacity: max(1, qCount))
        error = .allocate(capacity: max(1, errorCount))
        error.initialize(repeating: 0)
        // The same pseudo-random start for Q on every rank.
        var generator = SplitMix64(seed: seed, stream: 0x5047_5344)
        for i in 0..<q.count { q[i] = Float(generator.nextNormal()) }
        try restore(state, qCount: qCount, errorCount: errorCount)
    }

    deinit {
        pMessage.deallocate(); q.deallocate(); error.deallocate()
    }

    /// Replaces `gradients` (this rank's, laid out as the network's) with the compressed sum over the group.
    func reduce(_ gradients: UnsafeMutablePointer<Float>) throws {
        let p = pMessage.baseAddress!, qt = q.baseAddress!, e = error.baseAddress!
        // M = g + e in place of g; P = M·Q.
        for matrix in matrices {
            lowRankProject(gradients + matrix.offset, adding: e + matrix.error, rows: matrix.rows, columns: matrix.columns,
                           qt: qt + matrix.q, rank: approximationRank, into: p + matrix.p)
        }
        let factors = matrices.reduce(0) { $0 + $1.rows * approximationRank }
        var packed = factors
        for range in uncompressed {
            (p + packed).update(from: gradients + range.lowerBound, count: range.count)
            packed += range.count
        }
        try group.allreduceSum(p, count: pMessage.count, of: .float)
        packed = factors
        for range in uncompressed {
            (gradients + range.lowerBound).update(from: p + packed, count: range.count)
            packed += range.count
        }
        // Q = Mᵀ·P with P's columns orthonormal (stored transposed, [r×m]).
        for matrix in matrices {
            orthonormalize(p + matrix.p, vectors: approximationRank, length: matrix.rows)
            lowRankBackProject(gradients + matrix.offset, rows: matrix.rows, columns: matrix.columns, pt: p + matrix.p, rank: approximationRank,
                               into: qt + matrix.q)
        }
        try group.allreduceSum(qt, count: q.count, of: .float)
        // The gradient becomes P·Qᵀ; e = M − P·Qᵀ / ranks.
        for matrix in matrices {
            lowRankReconstruct(gradients + matrix.offset, error: e + matrix.error, rows: matrix.rows, columns: matrix.columns,
                               pt: p + matrix.p, qt: qt + matrix.q, rank: approximationRank, share: 1 / Float(group.size))
        }
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
