/// DataParallel: one training step and how the ranks' gradients become one: reductions, PowerSGD, synchronization schedules, read-ahead.

import Distributed
import Kernels
import NeuralNet
import Support

/// The rows a step trains on: `count` rows of `featureCount` features and `targetCount` targets, gathered by index.
public protocol TrainingRows: AnyObject {
    var count: Int { get }
    var featureCount: Int { get }
    var targetCount: Int { get }
    /// Writes the normalized features [rows.count×featureCount] and targets [rows.count×targetCount] of `rows`.
    func gather(rows: UnsafeBufferPointer<Int32>, features: UnsafeMutablePointer<Float>, targets: UnsafeMutablePointer<Float>,
                threads: Int)
    /// Whether `gather` reads the rows from files (then a background reader prepares the next batches).
    var readsFromFiles: Bool { get }
    /// Starts reading `rows` from disk in the background, before they are gathered (a hint; may do nothing).
    func willRead(rows: UnsafeBufferPointer<Int32>)
    /// Each row's weight in the loss (sample weight × class weight), nil when every row weighs 1.
    var rowWeights: [Float]? { get }
}

extension TrainingRows {
    public var readsFromFiles: Bool { false }
    public func willRead(rows: UnsafeBufferPointer<Int32>) {}
}

/// What a step needs from the config: the global batch, the seed (dropout masks), clipping, this rank's threads and
/// how long a collective of training may wait for every rank.
public struct StepOptions: Sendable {
    /// Rows of the global batch, over all ranks.
    var batchSize: Int
    /// Seeds the dropout masks.
    var seed: UInt64
    /// The largest global gradient norm a step applies (nil: no clipping).
    var clipGradientNorm: Double?
    /// This rank's compute threads.
    var threads: Int
    /// Seconds a collective of training may wait for every rank.
    var timeoutSeconds: Double
    /// Batches read ahead on a background thread when the rows come from files (0: none).
    var prefetchBatches: Int

    /// Options as a config resolves them.
    public init(batchSize: Int, seed: UInt64, clipGradientNorm: Double?, threads: Int, timeoutSeconds: Double,
                prefetchBatches: Int = 0) {
        (self.batchSize, self.seed, self.clipGradientNorm, self.threads) = (batchSize, seed, clipGradientNorm, threads)
        (self.timeoutSeconds, self.prefetchBatches) = (timeoutSeconds, prefetchBatches)
    }
}

/// One optimizer step of data-parallel training; every rank makes the same calls in the same order:
/// local rows → forward → loss → backward → reduce (the agreement in flight alongside) → agree → clip → optimizer
/// step → publish → synchronize.
///
/// What varies (how gradients are reduced, when the nodes synchronize, who watches the time) is a value the step
/// calls, not a branch in it.
/// The step allocates nothing: its buffers are sized once for this rank's largest share of a batch.
public final class TrainingStep {
    /// What one step reports back to the loop (identical on every rank, but for `lossSum` between rounds).
    public struct Outcome {
        /// Sum of the per-sample losses of the global batch; between rounds of periodic synchronization, when the
        /// ranks agree within their node only, the node's rows' sum scaled to the global batch (its mean loss × rows).
        public var lossSum: Double
        /// The loss sums of every global batch since the previous agreement over all ranks, this one's included
        /// (`lossSum` when every step agrees; at a round, the steps of the round; 0 between rounds): what an
        /// epoch's loss adds up.
        public var agreedLossSum: Double
        public var samples: Int
        public var stopRequested: Bool
        /// Rank 0 asked for a checkpoint after this step (`checkpoint.every_seconds` by its clock).
        public var checkpointRequested: Bool
        /// Set when a loss or gradient was non-finite on some rank; the optimizer step was then not taken.
        public var divergence: Divergence?
    }

    /// Why a run stops without updating the parameters: the first step (0-based) a non-finite or unsummable value
    /// was met, the mean loss of that step's batch (its node's rows between rounds), and whether every value was
    /// finite but some group's gradient left the fixed-point range.
    public typealias Divergence = (step: Int, loss: Double, fixedPointOverflow: Bool)

    /// The layers the step trains (this rank's copy).
    let network: Network
    /// The update rule and its state.
    let optimizer: Optimizer
    /// The learning rate of each step.
    let schedule: LearningRateSchedule
    /// The loss and what it reads from the targets.
    let loss: LossOptions
    /// The training rows every batch is gathered from.
    let rows: TrainingRows
    /// The every-step reduction over all ranks (what the run's first lines name).
    public let reduction: GradientReduction
    /// Which reduction each step uses and when the nodes' parameters are made one again.
    public let synchronization: Synchronization
    /// The ranks that agree after each step.
    let communicator: Communicator
    /// What the step needs from the config.
    let options: StepOptions
    /// Whether a stop was asked for on this rank (a signal): the ranks agree on it after each step.
    private let stopRequested: () -> Bool
    /// Hears the phase boundaries (bench timing, the timeline); nil in plain training.
    public var observer: StepObserver?
    /// Each rank's busy time, carried by the agreement, and the naming of a slow rank; nil for a world of one.
    public let pace: RankPace?
    /// With `distributed.balance`: moves the ranks' shares of the batches to follow their speeds; nil otherwise.
    let balance: ShareBalance?
    private let features: UnsafeMutablePointer<Float>
    private let targets: UnsafeMutablePointer<Float>
    private let outputGradient: UnsafeMutablePointer<Float>
    private let agreement: StepAgreement.Buffer
    /// Where this rank's rows of each batch come from: gathered in the step, or read ahead in the background.
    private let batches: BatchReader

    /// A step over `rows` whose gradients `reduction` combines across `communicator`'s ranks.
    public init(network: Network, optimizer: Optimizer, schedule: LearningRateSchedule, loss: LossOptions, rows: TrainingRows,
                reduction: GradientReduction, communicator: Communicator, options: StepOptions,
                synchronization: Synchronization? = nil, stopRequested: @escaping () -> Bool = { false },
                observer: StepObserver? = nil, pace: RankPace? = nil, balance: ShareBalance? = nil) {
        (self.network, self.optimizer, self.schedule, self.loss, self.rows) = (network, optimizer, schedule, loss, rows)
        (self.reduction, self.communicator, self.options) = (reduction, communicator, options)
        self.synchronization = synchronization ?? EveryStepSync(reduction)
        self.stopRequested = stopRequested
        self.observer = observer
        self.pace = pace
        self.balance = pace == nil ? nil : balance
        let capacity = max(1, reduction.rowCapacity(batchSize: options.batchSize),
                           self.synchronization.reduction(forStep: Int.max).rowCapacity(batchSize: options.batchSize))
        network.reserve(batchCapacity: capacity)
        features = .allocate(capacity: capacity * rows.featureCount)
        targets = .allocate(capacity: capacity * rows.targetCount)
        outputGradient = .allocate(capacity: capacity * network.outputWidth)
        agreement = StepAgreement.Buffer(pace: pace, world: communicator, node: self.synchronization.nodeAgreement)
        batches = options.prefetchBatches > 0 && rows.readsFromFiles
            ? PrefetchedBatches(rows, depth: options.prefetchBatches, capacity: capacity) : DirectBatches(rows)
        // Start-up is over once there is a step to run: from here on a collective waits at most timeout_seconds.
        communicator.timeoutSeconds = options.timeoutSeconds
    }

    deinit {
        batches.stop()
        features.deallocate(); targets.deallocate(); outputGradient.deallocate()
    }

    /// This rank's rows of batch `batchIndex` of an epoch in `order` (nil past the epoch's end): its share of the
    /// global batch, as `reduction` assigns the shares.
    private func localRows(ofBatch batchIndex: Int, of order: UnsafeBufferPointer<Int32>,
                           reduction: GradientReduction) -> UnsafeBufferPointer<Int32>? {
        let batchStart = batchIndex * options.batchSize
        guard batchStart < rows.count else { return nil }
        let local = reduction.localRows(ofBatch: min(options.batchSize, rows.count - batchStart))
        return UnsafeBufferPointer(rebasing: order[(batchStart + local.lowerBound)..<(batchStart + local.upperBound)])
    }

    /// The loss of this rank's rows as a weighted mean over the whole global batch (PyTorch's `weight=` reduction):
    /// row r's gradient is scaled by w_r / W, W the global batch's total weight, which every rank sums alike from the
    /// shared row order, so the ranks' gradients add up to the exact weighted mean. The loss sum returned is
    /// Σ w_r·ℓ_r × (global rows / W), so that dividing by the rows (as for unweighted steps) gives the weighted mean.
    private func weightedLoss(_ weights: [Float], order: [Int32], batchStart: Int, globalCount: Int, local: Range<Int>,
                              prediction: UnsafePointer<Float>) -> Loss.BatchTotals {
        var total = 0.0
        for index in batchStart..<(batchStart + globalCount) { total += Double(weights[Int(order[index])]) }
        let width = network.outputWidth, targetWidth = rows.targetCount
        var totals = Loss.BatchTotals()
        for row in 0..<local.count {
            let weight = Double(weights[Int(order[batchStart + local.lowerBound + row])])
            let scale = total > 0 ? Float(weight / total) : 0
            let one = loss.evaluate(outputs: prediction + row * width, targets: targets + row * targetWidth, batch: 1, width: width,
                                    gradient: outputGradient + row * width, gradientScale: scale)
            totals.lossSum += weight * one.lossSum
            totals.correct += one.correct
        }
        if total > 0 { totals.lossSum *= Double(globalCount) / total }
        return totals
    }

    /// Trains on batch `batchIndex` of an epoch whose rows come in `order`, as optimizer step `step` (0-based);
    /// `checkpointDue` on any rank makes every rank's outcome ask for a checkpoint; `synchronize` (an epoch's end, a
    /// checkpoint by steps), an agreed stop or checkpoint make the nodes synchronize after it.
    public func run(batchIndex: Int, of order: [Int32], step: Int, checkpointDue: Bool = false,
                    synchronize: Bool = false) throws -> Outcome {
        let batchSize = options.batchSize, threads = options.threads
        let reduction = synchronization.reduction(forStep: step)
        communicator.activity = .step(step + 1)
        pace?.stepBegan()
        defer { pace?.stepEnded() }
        let batchStart = batchIndex * batchSize
        let globalCount = min(batchSize, rows.count - batchStart)
        let local = reduction.localRows(ofBatch: globalCount)

        // 1. This rank's rows of the global batch, normalized (read ahead, when the reader does, with the next ones).
        try observer?.begin(.data)
        order.withUnsafeBufferPointer { order in
            batches.read(UnsafeBufferPointer(rebasing: order[(batchStart + local.lowerBound)..<(batchStart + local.upperBound)]),
                         upcoming: { localRows(ofBatch: batchIndex + $0, of: order, reduction: reduction) }, features: features, targets: targets,
                         threads: threads)
        }
        // 2. Forward; dropout masks come from the step and each row's place in the global batch, not from the rank.
        try observer?.begin(.forward)
        let prediction = network.forward(input: features, batch: local.count,
                                         pass: TrainingPass(seed: options.seed, step: step, firstSample: local.lowerBound))
        // 3. Loss; its gradient is scaled by 1/global batch (1/this node's share in local steps), so the ranks' sum is the
        //    gradient of the batch's mean loss; with row weights, by w_r / the batch's total weight.
        let totals: Loss.BatchTotals
        if let weights = rows.rowWeights {
            totals = weightedLoss(weights, order: order, batchStart: batchStart, globalCount: globalCount, local: local,
                                  prediction: prediction)
        } else {
            totals = loss.evaluate(outputs: prediction, targets: targets, batch: local.count, width: network.outputWidth,
                                   gradient: outputGradient,
                                   gradientScale: 1 / Float(max(1, reduction.meanRows(ofBatch: globalCount))))
        }
        // 4. Backward, the reduction hearing each layer's gradient as it is ready. Then the ranks start agreeing on the
        // batch loss, a stop or checkpoint request and whether any rank met a value it could not sum, over all ranks;
        // between rounds within the node, what else there is to agree on waiting for the round. Each rank's busy time
        // rides along to the pace.
        try observer?.begin(.backward)
        let summable = reduction.backward(BackwardPass(network: network, input: features, outputGradient: outputGradient,
                                                       rows: local.count))
        try observer?.begin(.reduce)
        let lossIsFinite = totals.lossSum.isFinite
        try agreement.start(StepAgreement(lossSum: totals.lossSum, stopRequested: stopRequested(), checkpointRequested: checkpointDue,
                                          unsummable: !summable || !lossIsFinite, nonFinite: !lossIsFinite),
                            acrossNodes: synchronization.agreesAcrossNodes(afterStep: step, force: synchronize))
        // 5. Reduce: every rank now holds the global batch's gradient (its node's share in local steps), and its norm.
        try reduction.finish()
        let norm = try reduction.gradientNorm(threads: threads)
        // 6. Agree, the norm's finiteness included.
        let agreed = try agreement.finish(step: step, batchRows: globalCount, nodeRows: reduction.meanRows(ofBatch: globalCount),
                                          normIsFinite: norm.isFinite)
        // The next steps' shares of the batch may follow the ranks' busy times (every rank sets the same), and the
        // parameter slices the shares.
        try balance?.afterStep(count: globalCount, busySeconds: agreement.busySeconds) {
            try reduction.followShares(optimizer: optimizer)
        }
        try observer?.begin(.optimizer)
        let outcome = Outcome(lossSum: agreed.lossSum, agreedLossSum: agreed.agreedLossSum, samples: globalCount,
                              stopRequested: agreed.stopRequested, checkpointRequested: agreed.checkpointRequested,
                              divergence: agreed.divergence)
        if outcome.divergence != nil {
            try observer?.endStep(samples: globalCount)
            return outcome
        }
        // 7–8. Clip and step, unless this node diverged between rounds: it keeps its last finite parameters (and its
        // part in the collectives) until the round ends the run.
        if !agreed.nodeDiverged { try update(reduction, norm: norm, step: step) }
        // 9. Synchronize the nodes when periodic synchronization is due (nothing when every step reduced).
        try synchronization.afterStep(step, force: synchronize || agreed.stopRequested || agreed.checkpointRequested)
        try observer?.endStep(samples: globalCount)
        return outcome
    }

    /// 7. Clips by the global norm: the reduction's gradients reach the optimizer scaled (this rank's slice: the
    /// node's ranks share it). 8. The optimizer step over this rank's slice, reading them block by block as the
    /// reduction forms them; then the node's parameters are made whole for the next forward.
    private func update(_ reduction: GradientReduction, norm: Double, step: Int) throws {
        let clip = options.clipGradientNorm.flatMap { norm > $0 ? Float($0 / (norm + 1e-6)) : nil }
        optimizer.step(parameters: network.parameters.baseAddress!, gradients: reduction.updateGradients(scaledBy: clip),
                       learningRate: schedule.rate(atStep: step), threads: options.threads, range: reduction.updateRange)
        try reduction.publish()
    }
}
