import Distributed

/// What the ranks agree on after each step's reduction, with one small sum over the ranks. It starts right after
/// back-propagation, so that its round trip overlaps the reduction's; the gradient's norm joins it at the end (every
/// rank of the sum has the same reduced gradient, hence the same norm), except when nodes agree at a round of
/// periodic synchronization, where the norms are the nodes' own and go into the sum.
struct StepAgreement {
    /// Sum of the per-sample losses of this rank's rows.
    var lossSum: Double
    /// A stop signal arrived on this rank.
    var stopRequested: Bool
    /// A checkpoint is due (rank 0's clock).
    var checkpointRequested: Bool
    /// A loss or gradient could not be summed: non-finite, or outside the fixed-point range.
    var unsummable: Bool
    /// The loss was not finite (with `unsummable`: not only a fixed-point overflow); the norm's finiteness joins at
    /// `finish`.
    var nonFinite = false

    /// What a step learns from the agreement.
    struct Agreed {
        /// The step's loss sum over the global batch: over all ranks, or between rounds the node's scaled to the
        /// global batch (the node's mean loss times the batch's rows).
        var lossSum: Double
        /// The loss sums of the global batches since the previous agreement over all ranks, this one's included;
        /// 0 between rounds.
        var agreedLossSum: Double
        var stopRequested: Bool
        var checkpointRequested: Bool
        /// Some rank diverged (the first step any node saw it); every rank learns it at the same step.
        var divergence: TrainingStep.Divergence?
        /// This node diverged since the last agreement over all ranks: it takes no optimizer step until that ends the run.
        var nodeDiverged: Bool
    }

    /// The allreduce's buffer, allocated once so agreeing allocates nothing: six values, then with a pace one
    /// busy time per rank (which the balance follows too), and when nodes agree within themselves between
    /// rounds three values per rank of the first divergence a node saw (each rank fills its own slots, zeros
    /// elsewhere, so the sum is every rank's value exactly).
    ///
    /// Between rounds only the node's ranks agree (the first five values): what a world agreement would carry waits
    /// on each rank (its loss sums, a stop or checkpoint request, its node's first divergence) for the round.
    final class Buffer {
        private let pace: RankPace?
        private let world: Communicator
        private let node: Communicator?
        /// The non-blocking sums of the values over all ranks and within the node (nil for a group of one).
        private let worldRing: RingSum?, nodeRing: RingSum?
        /// The agreement started and not finished: its values, and whether they are summed over all ranks and are
        /// already in flight (else they wait for the norm).
        private var started: (local: StepAgreement, overAll: Bool, inFlight: Bool)?
        private let values: UnsafeMutableBufferPointer<Double>
        private let ranks: Int
        /// Offsets of the per-rank slots: busy times, the first divergence (step + 1, mean loss, non-finite).
        private let paceStart: Int, divergenceStart: Int
        /// This rank's loss sums of the steps agreed within the node since the last agreement over all ranks.
        private var pendingLossSum = 0.0
        private var pendingStop = false, pendingCheckpoint = false
        /// The first divergence the node agreed on since the last agreement over all ranks.
        private var pendingDivergence: TrainingStep.Divergence?

        /// A buffer for agreements over `world`, and between rounds within `node` (nil: every step over `world`).
        init(pace: RankPace?, world: Communicator, node: Communicator? = nil) {
            (self.pace, self.world, self.node) = (pace, world, node)
            ranks = world.size
            paceStart = 6
            divergenceStart = paceStart + (pace == nil ? 0 : ranks)
            values = .allocate(capacity: divergenceStart + (node == nil ? 0 : 3 * ranks))
            worldRing = world.size > 1 ? world.ringSum(capacity: values.count, tag: Buffer.ringTag) : nil
            nodeRing = node.flatMap { $0.size > 1 ? $0.ringSum(capacity: 5, tag: Buffer.ringTag + 1) : nil }
        }

        /// The tags of the agreement's ring sums (apart from the reductions' and periodic synchronization's).
        static let ringTag = 4097

        deinit { values.deallocate() }

        /// Each rank's busy time of the steps last agreed on over all ranks (empty without a pace).
        var busySeconds: UnsafeBufferPointer<Double> { UnsafeBufferPointer(rebasing: values[paceStart..<divergenceStart]) }

        /// `start` then `finish`, in one call, for a step whose norm is finite.
        func agree(_ local: StepAgreement, step: Int, batchRows: Int, nodeRows: Int, acrossNodes: Bool = true) throws -> Agreed {
            try start(local, acrossNodes: acrossNodes)
            return try finish(step: step, batchRows: batchRows, nodeRows: nodeRows, normIsFinite: true)
        }

        /// Starts summing every rank's `local` agreement: over all ranks when `acrossNodes` (with what waited since the
        /// last time), else within the node. It is sent now unless the norms may differ between the ranks summed.
        func start(_ local: StepAgreement, acrossNodes: Bool = true) throws {
            precondition(started == nil, "StepAgreement: started twice")
            let overAll = acrossNodes || node == nil, inFlight = !(overAll && node != nil)
            started = (local, overAll, inFlight)
            if inFlight { try send(local, overAll: overAll) }
        }

        /// Completes the agreement started for step `step`, once the reduction gave the norm; `batchRows` are the global
        /// batch's rows, `nodeRows` the node's.
        func finish(step: Int, batchRows: Int, nodeRows: Int, normIsFinite: Bool) throws -> Agreed {
            guard let (begun, overAll, inFlight) = started else { preconditionFailure("StepAgreement: finished unstarted") }
            var local = begun
            started = nil
            if !normIsFinite { (local.unsummable, local.nonFinite) = (true, true) }
            if !inFlight { try send(local, overAll: overAll) }
            try (overAll ? worldRing : nodeRing)?.wait()
            if !normIsFinite { (values[2], values[4]) = (max(values[2], 1), max(values[4], 1)) }
            return overAll ? agreedOverAll(step: step, batchRows: batchRows)
                : agreedWithinNode(local, step: step, batchRows: batchRows, nodeRows: nodeRows)
        }

        /// Fills the values (over all ranks: the first six, the busy times and what waited; within the node: the
        /// first five) and starts their sum.
        private func send(_ local: StepAgreement, overAll: Bool) throws {
            values[0] = local.lossSum
            values[1] = overAll && (local.stopRequested || pendingStop) ? 1 : 0
            values[2] = local.unsummable ? 1 : 0
            values[3] = overAll && (local.checkpointRequested || pendingCheckpoint) ? 1 : 0
            values[4] = local.nonFinite ? 1 : 0
            guard overAll else {
                return try nodeRing?.start(values.baseAddress!, count: 5, of: .double) ?? ()
            }
            values[5] = pendingLossSum
            UnsafeMutableBufferPointer(rebasing: values[paceStart...]).update(repeating: 0)
            if let pace { values[paceStart + world.rank] = pace.busySinceLastAgreement() }
            if let pendingDivergence {
                values[divergenceStart + 3 * world.rank] = Double(pendingDivergence.step + 1)
                values[divergenceStart + 3 * world.rank + 1] = pendingDivergence.loss
                values[divergenceStart + 3 * world.rank + 2] = pendingDivergence.fixedPointOverflow ? 0 : 1
            }
            try worldRing?.start(values.baseAddress!, count: values.count, of: .double)
        }

        /// Over all ranks: what the summed values say, and what waited is cleared.
        private func agreedOverAll(step: Int, batchRows: Int) -> Agreed {
            pace?.record(busySeconds)
            (pendingLossSum, pendingStop, pendingCheckpoint, pendingDivergence) = (0, false, false, nil)
            let current: TrainingStep.Divergence? = values[2] > 0
                ? (step: step, loss: values[0] / Double(max(1, batchRows)), fixedPointOverflow: values[4] == 0) : nil
            return Agreed(lossSum: values[0], agreedLossSum: values[0] + values[5], stopRequested: values[1] > 0,
                          checkpointRequested: values[3] > 0, divergence: firstDivergence() ?? current, nodeDiverged: false)
        }

        /// Between rounds: the node's loss and divergence; the rest waits on this rank for the next agreement over all.
        private func agreedWithinNode(_ local: StepAgreement, step: Int, batchRows: Int, nodeRows: Int) -> Agreed {
            pendingLossSum += local.lossSum
            pendingStop = pendingStop || local.stopRequested
            pendingCheckpoint = pendingCheckpoint || local.checkpointRequested
            if pendingDivergence == nil && values[2] > 0 {
                pendingDivergence = (step: step, loss: values[0] / Double(max(1, nodeRows)), fixedPointOverflow: values[4] == 0)
            }
            return Agreed(lossSum: values[0] * Double(batchRows) / Double(max(1, nodeRows)), agreedLossSum: 0,
                          stopRequested: false, checkpointRequested: false, divergence: nil, nodeDiverged: pendingDivergence != nil)
        }

        /// The earliest divergence any rank's node saw between rounds, from the slots just summed.
        private func firstDivergence() -> TrainingStep.Divergence? {
            guard node != nil else { return nil }
            var first: TrainingStep.Divergence?
            for rank in 0..<ranks {
                let slot = divergenceStart + 3 * rank, stepPlusOne = values[slot]
                guard stepPlusOne > 0, first.map({ Double($0.step + 1) > stepPlusOne }) ?? true else { continue }
                first = (step: Int(stepPlusOne) - 1, loss: values[slot + 1], fixedPointOverflow: values[slot + 2] == 0)
            }
            return first
        }
    }
}
