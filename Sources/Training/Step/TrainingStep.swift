import Distributed
import Kernels
import NeuralNet

/// One optimizer step of data-parallel training; every rank makes the same calls in the same order:
/// local rows → forward → loss → backward → reduce → agree → clip → optimizer step → publish.
///
/// What varies (how gradients are reduced, who watches the time) is a value the step calls, not a branch in it.
/// The step allocates nothing: its buffers are sized once for this rank's largest share of a batch.
final class TrainingStep {
    /// What one step reports back to the loop (identical on every rank).
    struct Outcome {
        /// Sum of the per-sample losses of the global batch.
        var lossSum: Double
        var samples: Int
        var stopRequested: Bool
        /// Rank 0 asked for a checkpoint after this step (`checkpoint.every_seconds` by its clock).
        var checkpointRequested: Bool
        /// Set when a loss or gradient was non-finite on some rank; the optimizer step was then not taken.
        var divergence: Divergence?
    }

    /// Why a step did not update the parameters: the batch's mean loss, and whether every value was finite but some
    /// group's gradient left the fixed-point range.
    typealias Divergence = (loss: Double, fixedPointOverflow: Bool)

    let setup: TrainingSetup
    let reduction: GradientReduction
    /// Hears the phase boundaries (bench timing); nil in training.
    var observer: StepObserver?
    private let input: UnsafeMutablePointer<Float>
    private let labels: UnsafeMutablePointer<Float>
    private let outputGradient: UnsafeMutablePointer<Float>
    private let agreement: StepAgreement.Buffer

    init(setup: TrainingSetup, reduction: GradientReduction, observer: StepObserver? = nil) {
        self.setup = setup
        self.reduction = reduction
        self.observer = observer
        let capacity = max(1, reduction.rowCapacity(batchSize: setup.config.training.batchSize))
        setup.network.reserve(batchCapacity: max(capacity, setup.config.training.evaluationBatchSize))
        input = .allocate(capacity: capacity * setup.train.featureCount)
        labels = .allocate(capacity: capacity * setup.train.targetCount)
        outputGradient = .allocate(capacity: capacity * setup.network.outputWidth)
        agreement = StepAgreement.Buffer()
        // Start-up is over once there is a step to run: from here on a collective waits at most timeout_seconds.
        setup.communicator.timeoutSeconds = setup.config.distributed.timeoutSeconds
    }

    deinit {
        input.deallocate(); labels.deallocate(); outputGradient.deallocate()
    }

    /// Trains on batch `batchIndex` of an epoch whose rows come in `order`, as optimizer step `step` (0-based);
    /// `checkpointDue` on any rank makes every rank's outcome ask for a checkpoint.
    func run(batchIndex: Int, of order: [Int32], step: Int, checkpointDue: Bool = false) throws -> Outcome {
        let network = setup.network, batchSize = setup.config.training.batchSize
        setup.communicator.activity = .step(step + 1)
        let batchStart = batchIndex * batchSize
        let globalCount = min(batchSize, setup.train.count - batchStart)
        let mine = reduction.localRows(ofBatch: globalCount)

        // 1. This rank's rows of the global batch, normalized.
        try observer?.begin(.data)
        order.withUnsafeBufferPointer {
            setup.train.gather(rows: UnsafeBufferPointer(rebasing: $0[(batchStart + mine.lowerBound)..<(batchStart + mine.upperBound)]),
                               features: input, labels: labels, threads: setup.threads)
        }
        // 2. Forward; dropout masks come from the step and each row's place in the global batch, not from the rank.
        try observer?.begin(.forward)
        let prediction = network.forward(input: input, batch: mine.count,
                                         pass: TrainingPass(seed: setup.config.seed, step: step, firstSample: mine.lowerBound))
        // 3. Loss; its gradient is scaled by 1/global batch, so the ranks' sum is the gradient of the batch's mean loss.
        let totals = setup.config.loss.evaluate(outputs: prediction, labels: labels, batch: mine.count, width: network.outputWidth,
                                                gradient: outputGradient, gradientScale: 1 / Float(globalCount))
        // 4. Backward, the reduction hearing each layer's gradient as it is ready.
        try observer?.begin(.backward)
        let summable = reduction.backward(BackwardPass(network: network, input: input, outputGradient: outputGradient,
                                                       rows: mine.count))
        // 5. Reduce: every rank now holds the global batch's gradient.
        try observer?.begin(.reduce)
        try reduction.finish()
        // 6. Agree on the batch loss, a stop or checkpoint request and whether any rank met a value it could not sum.
        let agreed = try agreement.agree(
            StepAgreement(lossSum: totals.lossSum, stopRequested: StopSignal.requested, checkpointRequested: checkpointDue,
                          unsummable: !summable || !totals.lossSum.isFinite), communicator: setup.communicator)
        try observer?.begin(.optimizer)
        let norm = try reduction.gradientNorm(threads: setup.threads)
        var outcome = Outcome(lossSum: agreed.lossSum, samples: globalCount, stopRequested: agreed.stopRequested,
                              checkpointRequested: agreed.checkpointRequested)
        if agreed.unsummable || !agreed.lossSum.isFinite || !norm.isFinite {
            outcome.divergence = (loss: agreed.lossSum / Double(globalCount),
                                  fixedPointOverflow: agreed.lossSum.isFinite && norm.isFinite)
            try observer?.endStep(samples: globalCount)
            return outcome
        }
        // 7. Clip by the global norm (this rank's slice of the gradient: the node's ranks share it).
        let gradients = reduction.reducedGradients, slice = reduction.updateRange
        if let maximum = setup.config.training.clipGradientNorm, norm > maximum {
            scale(gradients + slice.lowerBound, count: slice.count, by: Float(maximum / (norm + 1e-6)), threads: setup.threads)
        }
        // 8. Optimizer step over this rank's slice, then the node's parameters are made whole for the next forward.
        setup.optimizer.step(parameters: network.parameters.baseAddress!, gradients: gradients,
                             learningRate: setup.schedule.rate(atStep: step), threads: setup.threads, range: slice)
        try reduction.publish()
        try observer?.endStep(samples: globalCount)
        return outcome
    }
}

/// What the ranks agree on after each step's reduction, with one small allreduce.
struct StepAgreement {
    /// Sum of the per-sample losses (over the global batch once agreed).
    var lossSum: Double
    /// A stop signal arrived (on some rank, once agreed).
    var stopRequested: Bool
    /// A checkpoint is due (rank 0's clock; once agreed, every rank saves after this step).
    var checkpointRequested: Bool
    /// A loss or gradient could not be summed: non-finite, or outside the fixed-point range (on some rank).
    var unsummable: Bool

    /// The allreduce's buffer, allocated once so agreeing allocates nothing.
    final class Buffer {
        private let values = UnsafeMutableBufferPointer<Double>.allocate(capacity: 4)

        deinit { values.deallocate() }

        /// Sums every rank's `local` agreement: the global loss, and whether any rank asked to stop or met a problem.
        func agree(_ local: StepAgreement, communicator: Communicator) throws -> StepAgreement {
            values[0] = local.lossSum
            values[1] = local.stopRequested ? 1 : 0
            values[2] = local.unsummable ? 1 : 0
            values[3] = local.checkpointRequested ? 1 : 0
            try communicator.allreduceSum(values)
            return StepAgreement(lossSum: values[0], stopRequested: values[1] > 0, checkpointRequested: values[3] > 0,
                                 unsummable: values[2] > 0)
        }
    }
}
