import Config
import DataParallel
import Datasets
import Distributed
import Formats
import Foundation
import Kernels
import NeuralNet
import Support
import Tables

/// Everything a run starts from, identical on every rank: data, task, network, optimizer, schedule and position.
///
/// Loading is agreed by all ranks: a failure on any rank stops every rank with that rank's message (status 2 for
/// the user's mistakes). On resume only rank 0 reads the checkpoint; the others receive it by broadcast, so no
/// shared disk is needed.
public final class TrainingSetup {
    /// The resolved config the run trains.
    let config: TrainingConfig
    /// The ranks of the job.
    let communicator: Communicator
    /// Compute threads of this rank.
    public let threads: Int
    /// The SIMD kernel variant every rank runs (the narrowest any rank supports or asks for).
    public let kernel: KernelVariant
    /// The name of the kernels the run uses: the variant's, with "-bf16" for bf16 products (first line, summary).
    public var kernelName: String { config.training.precision.kernelName(kernel) }
    /// The training, validation and test rows, normalized.
    let data: SplitData
    /// What the network learns, from the loss and the targets.
    let task: LearningTask
    public let network: Network
    public let optimizer: Optimizer
    public let schedule: LearningRateSchedule
    /// Where training continues from (zero for a fresh run, a checkpoint's position on resume).
    let position: TrainingPosition
    /// The checkpoint this run resumed from, if any.
    let resumedFrom: String?
    /// The gradient reduction's saved state (`compression.*` tensors) on rank 0 when resuming; empty otherwise.
    let reductionState: [TensorRecord]
    /// Periodic synchronization's saved state (`sync.*` tensors) on rank 0 when resuming; empty otherwise.
    let syncState: [TensorRecord]
    /// The ranks' saved balance of batch shares (`balance.*` tensors) on rank 0 when resuming; empty otherwise.
    let balanceState: [TensorRecord]

    /// Loads data and network on every rank and, with `resumingFrom`, restores that run directory's newest checkpoint.
    public init(config: TrainingConfig, communicator: Communicator, resumingFrom runDirectory: RunDirectory? = nil) throws {
        self.config = config
        self.communicator = communicator
        communicator.timeoutSeconds = config.distributed.startUpTimeoutSeconds
        kernel = try agreeOnKernel(communicator)
        try agreeOnPrecision(config.training.precision, communicator)
        switch config.training.threads {
        case .auto: threads = availableCPUCount()
        case let .fixed(count): threads = count
        }
        let threadCount = threads
        let checkpoint: Checkpoint.Loaded?
        // Reading is local; the split's passes over the rows are collectives of their own (each rank reads a slice).
        let read = try collectively(communicator) { try TrainingSetup.read(config) }
        let data = try SplitData(train: read.whole, validation: read.validation, test: read.test, options: config.dataOptions,
                                 communicator: communicator)
        self.data = data
        data.train.prepareReads(for: config.epochOrder)
        (task, network, optimizer, checkpoint) = try collectively(communicator) {
            let (task, network) = try TrainingSetup.build(config, data: data, threads: threadCount)
            let optimizer = Optimizer(settings: config.optimizer, parameterCount: network.parameterCount,
                                      layers: network.parameterLayers)
            guard let runDirectory, communicator.rank == 0 else { return (task, network, optimizer, nil) }
            let newest = try TrainingSetup.newestCheckpoint(in: runDirectory)
            try ModelFile.load(newest.tensors, into: network, source: newest.path)
            guard optimizer.restore(stepCount: newest.optimizerSteps, firstMoment: newest.firstMoment,
                                    secondMoment: newest.secondMoment) else {
                throw UserError("\(newest.path): its optimizer state does not fit optimizer.name \(config.optimizer.kind.rawValue)")
            }
            return (task, network, optimizer, newest)
        }
        if communicator.rank == 0 { for note in data.unseenLevelNotes { Diagnostics.note(note) } }
        schedule = LearningRateSchedule(
            kind: config.schedule.kind, baseRate: config.optimizer.learningRate, warmupSteps: config.schedule.warmupSteps,
            stepSize: config.schedule.stepSize, gamma: Float(config.schedule.gamma),
            minimumRate: Float(config.schedule.minimumRate),
            totalSteps: TrainingSetup.stepsPerEpoch(samples: data.train.count, batchSize: config.training.batchSize) * config.training.epochs)

        try TrainingSetup.checkRanksAgree(config: config, network: network, data: data, communicator: communicator)
        // Every rank starts from rank 0's parameters, optimizer state and position, bit for bit.
        try communicator.broadcast(UnsafeMutableRawBufferPointer(network.parameters), root: 0)
        if runDirectory != nil {
            try optimizer.withMutableState { first, second, steps in
                try communicator.broadcast(UnsafeMutableRawBufferPointer(first), root: 0)
                try communicator.broadcast(UnsafeMutableRawBufferPointer(second), root: 0)
                var count = Int64(steps)
                try withUnsafeMutableBytes(of: &count) { try communicator.broadcast($0, root: 0) }
                steps = Int(count)
            }
            position = try TrainingPosition(json: communicator.broadcast(checkpoint?.position.json ?? "", root: 0))
            resumedFrom = try communicator.broadcast(checkpoint?.path ?? "", root: 0)
        } else {
            position = TrainingPosition()
            resumedFrom = nil
        }
        reductionState = checkpoint?.tensors.filter { $0.name.hasPrefix("compression.") } ?? []
        syncState = checkpoint?.tensors.filter { $0.name.hasPrefix("sync.") } ?? []
        balanceState = checkpoint?.tensors.filter { $0.name.hasPrefix("balance.") } ?? []
    }

    /// Optimizer steps in one epoch (the last batch may be short).
    public var stepsPerEpoch: Int { TrainingSetup.stepsPerEpoch(samples: data.train.count, batchSize: config.training.batchSize) }

    /// The rows training steps through: the training data without the held-out validation rows.
    public var train: Dataset { data.train }

    static func stepsPerEpoch(samples: Int, batchSize: Int) -> Int { (samples + batchSize - 1) / batchSize }

    /// The order of the training rows in `epoch` (the same on every rank).
    public func epochOrder(_ epoch: Int) -> [Int32] {
        config.epochOrder.rows(count: train.count, seed: config.seed, epoch: epoch)
    }

    /// Reads the training, validation and test data; throws UserError for any bad input.
    static func read(_ config: TrainingConfig) throws -> (whole: LoadedData, validation: LoadedData?, test: LoadedData?) {
        let options = config.dataOptions
        func read(_ location: DataLocation) throws -> LoadedData {
            try LoadedData.load(location, format: config.data.format, targets: config.data.targets, rules: options.rules,
                                classTargets: options.classTargets)
        }
        var whole = try read(config.data.train)
        if let limit = config.data.trainLimit { whole.limit(to: limit) }
        return (whole, try config.data.validation.map(read), try config.data.test.map(read))
    }

    /// Builds the task and the network for the split data, checks the targets fit the task and sets the class
    /// weights; throws UserError for any bad input.
    static func build(_ config: TrainingConfig, data: SplitData, threads: Int) throws -> (task: LearningTask, network: Network) {
        let train = data.train
        let task = try LearningTask(loss: config.loss.kind, outputWidth: config.model.layers.last!.units,
                                    targetCount: train.targetCount)
        for set in [train, data.validation, data.test] { if let set { try task.validateTargets(of: set) } }
        if let weights = config.loss.classWeights, case let .classification(classes) = task {
            switch weights {
            case .balanced:
                train.applyClassWeights(try balancedClassWeights(counts: train.classCounts(classCount: classes),
                                                                 classNames: train.classNames))
            case let .given(values):
                guard values.count == classes else {
                    throw UserError("loss.class_weights: \(values.count) weight\(values.count == 1 ? "" : "s") for \(classes) "
                        + "classes (one per class, in class order\(train.classNames.map { ": " + $0.joined(separator: ", ") } ?? ""))")
                }
                train.applyClassWeights(values)
            }
        }
        try EarlyStoppingState.checkMetric(of: config, task: task)

        let network = Network(inputWidth: train.featureCount, layers: config.model.layers.map { ($0.units, $0.activation) },
                              dropout: config.model.layers.map { Float($0.dropout) },
                              embeddings: train.encoding?.embeddings ?? [], threads: threads)
        network.precision = config.training.precision
        network.initialize(weights: config.model.initialization.weights, biasValue: config.model.initialization.biases.value,
                           seed: config.seed)
        if let path = config.model.initFrom {
            try ModelFile.load(try SafeTensors.read(path: path).tensors, into: network, source: path)
        }
        return (task, network)
    }

    /// The newest checkpoint of `runDirectory` that verifies; warns about the ones skipped.
    static func newestCheckpoint(in runDirectory: RunDirectory) throws -> Checkpoint.Loaded {
        let (newest, skipped) = Checkpoint.newestValid(in: runDirectory)
        guard let newest else {
            throw UserError("\(runDirectory.path): nothing to resume (no valid checkpoint in \(runDirectory[.checkpoints]))"
                + (skipped.isEmpty ? "" : "; skipped: " + skipped.joined(separator: "; ")))
        }
        for reason in skipped { Diagnostics.warning("skipping \(reason)") }
        return newest
    }

    /// Stops with a clear error when ranks were started with different configs or builds.
    static func checkRanksAgree(config: TrainingConfig, network: Network, data: SplitData, communicator: Communicator) throws {
        var hasher = SHA256()
        hasher.update(bytes: Array(config.yaml.utf8))
        hasher.update(bytes: Array(network.layers.map { "\($0.inputWidth)x\($0.outputWidth):\($0.activation)" }
            .joined(separator: ",").utf8))
        if !network.embeddings.isEmpty {
            hasher.update(bytes: Array(network.embeddings.map { "\($0.name):\($0.levels)x\($0.dimension)" }.joined(separator: ",").utf8))
        }
        hasher.update(bytes: Array("\(data.train.count) \(data.test?.count ?? -1) \(data.validation?.count ?? -1)".utf8))
        hasher.update(bytes: Array((data.split?.text ?? "").utf8))
        let digest = hasher.finalize()
        let value = digest.prefix(8).reduce(Int64(0)) { $0 << 8 | Int64($1) }
        let low = try communicator.allreduceMin(value), high = try communicator.allreduceMax(value)
        if low != high {
            throw AgreedUserError("ranks disagree on the resolved config, parameter layout or data sizes "
                + "(config hash differs between ranks); start every rank with the same config, data and binary")
        }
    }

    /// A warning when this node runs more ranks × threads than it has cores, else nil.
    public var oversubscriptionWarning: String? {
        let environment = ProcessInfo.processInfo.environment
        let ranksPerNode = ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"]
            .compactMap { environment[$0].flatMap { Int($0) } }.first ?? 1
        let cores = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        guard ranksPerNode * threads > cores else { return nil }
        return "\(ranksPerNode) ranks × \(threads) threads on this node exceed its \(cores) cores; "
            + "expect slower steps (set training.threads or use fewer ranks)"
    }
}

/// A dataset is what a training step gathers its rows from.
extension Dataset: TrainingRows {}
