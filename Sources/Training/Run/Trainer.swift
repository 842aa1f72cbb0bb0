import Distributed
import Foundation
import Kernels
import NeuralNet

/// What a finished run reports (also written as summary.json).
public struct RunSummary: Codable, Equatable {
    public var worldSize: Int
    public var threadsPerRank: Int
    public var epochs: Int
    public var steps: Int
    public var trainLoss: Double
    public var testLoss: Double?
    public var testAccuracy: Double?
    public var samplesPerSecond: Double
    public var wallSeconds: Double
    public var paramSHA256: String

    enum CodingKeys: String, CodingKey {
        case worldSize = "world_size", threadsPerRank = "threads_per_rank", epochs, steps
        case trainLoss = "train_loss", testLoss = "test_loss", testAccuracy = "test_accuracy"
        case samplesPerSecond = "samples_per_second", wallSeconds = "wall_seconds", paramSHA256 = "param_sha256"
    }
}

/// The rows of a global batch that one rank computes: contiguous, sizes differing by at most one.
public func shard(of batchCount: Int, rank: Int, worldSize: Int) -> Range<Int> {
    let base = batchCount / worldSize, extra = batchCount % worldSize
    let start = rank * base + min(rank, extra)
    return start..<(start + base + (rank < extra ? 1 : 0))
}

/// Runs data-parallel training of one config on one communicator (every rank runs the same calls).
public final class Trainer {
    public let config: TrainingConfig
    public let communicator: Communicator
    public let runDirectory: String
    public let threads: Int
    let train: Dataset
    let test: Dataset?
    let network: Network
    let optimizer: Optimizer
    let schedule: LearningRateSchedule
    let progress: ProgressReporter
    let startTime: Date
    /// Where training continues from (zero for a fresh run, a checkpoint's position on resume).
    public private(set) var position = TrainingPosition()
    /// The checkpoint this run resumed from, if any.
    public private(set) var resumedFrom: String?
    /// Time spent in each part of the step so far (for `plexus bench step`).
    public private(set) var timings = StepTimings()
    /// Whether `trainStep` times the wait for the slowest rank on its own (set by `benchmark`).
    private var separatesWait = false

    /// Loads the data, builds and initialises the network and creates the run directory; every rank calls it.
    ///
    /// A failure on any rank stops every rank with status 2 (user error) and that rank's message,
    /// because `collectively` makes all ranks learn of it at the same point.
    public init(config: TrainingConfig, runDirectory: String, communicator: Communicator, startTime: Date = Date(),
                progressMode: ProgressMode = .auto, resume: Bool = false, createRunDirectory: Bool = true) throws {
        self.config = config
        self.communicator = communicator
        self.runDirectory = runDirectory
        self.startTime = startTime
        switch config.training.threads {
        case .auto: threads = availableCPUCount()
        case let .fixed(count): threads = count
        }
        let isRoot = communicator.rank == 0
        progress = ProgressReporter(enabled: isRoot, interactive: progressMode.isLive)

        var loaded: (Dataset, Dataset?, Network, Optimizer)?
        let threadCount = threads
        var checkpoint: Checkpoint.Loaded?
        try collectively(communicator) {
            let (train, test, network) = try Trainer.prepare(config: config, threads: threadCount)
            let optimizer = Optimizer(settings: config.optimizer, parameterCount: network.parameterCount)
            // Only rank 0 reads the checkpoint; the others get its contents by broadcast (no shared disk needed).
            if resume && isRoot {
                let (newest, skipped) = Checkpoint.newestValid(in: runDirectory)
                guard let newest else {
                    throw UserError("\(runDirectory): nothing to resume (no valid checkpoint in \(Checkpoint.directory(of: runDirectory)))"
                        + (skipped.isEmpty ? "" : "; skipped: " + skipped.joined(separator: "; ")))
                }
                for reason in skipped { FileHandle.standardError.write(Data("plexus: warning: skipping \(reason)\n".utf8)) }
                try ModelFile.load(newest.tensors, into: network, source: newest.path)
                guard optimizer.restore(stepCount: newest.optimizerSteps, firstMoment: newest.firstMoment,
                                        secondMoment: newest.secondMoment) else {
                    throw UserError("\(newest.path): its optimizer state does not fit optimizer.name \(config.optimizer.kind.rawValue)")
                }
                checkpoint = newest
            }
            if isRoot && createRunDirectory { try Trainer.createRunDirectory(runDirectory, config: config) }
            loaded = (train, test, network, optimizer)
        }
        (train, test, network, optimizer) = loaded!
        if let checkpoint {
            position = checkpoint.position
            resumedFrom = checkpoint.path
        }
        let stepsPerEpoch = (train.count + config.training.batchSize - 1) / config.training.batchSize
        schedule = LearningRateSchedule(
            kind: config.schedule.kind, baseRate: config.optimizer.learningRate, warmupSteps: config.schedule.warmupSteps,
            stepSize: config.schedule.stepSize, gamma: Float(config.schedule.gamma),
            minimumRate: Float(config.schedule.minimumRate), totalSteps: stepsPerEpoch * config.training.epochs)

        try checkRanksAgree()
        // Every rank starts from rank 0's parameters, optimizer state and position, bit for bit.
        try communicator.broadcast(UnsafeMutableRawBufferPointer(network.parameters), root: 0)
        if resume {
            try self.optimizer.withMutableState { first, second, steps in
                try communicator.broadcast(UnsafeMutableRawBufferPointer(first), root: 0)
                try communicator.broadcast(UnsafeMutableRawBufferPointer(second), root: 0)
                var count = Int64(steps)
                try withUnsafeMutableBytes(of: &count) { try communicator.broadcast($0, root: 0) }
                steps = Int(count)
            }
            var values = position.asDoubles
            try values.withUnsafeMutableBytes { try communicator.broadcast($0, root: 0) }
            position = TrainingPosition(values)
            resumedFrom = try communicator.broadcast(resumedFrom ?? "", root: 0)
        }
        warnIfOversubscribed()
    }

    /// Reads data and builds the network; throws UserError for any bad input.
    static func prepare(config: TrainingConfig, threads: Int) throws -> (Dataset, Dataset?, Network) {
        let train: Dataset
        var test: Dataset?
        switch config.data.format {
        case .idx:
            train = try Dataset.loadIDX(prefix: config.data.train)
            test = try config.data.test.map { try Dataset.loadIDX(prefix: $0) }
        case .csv:
            train = try Dataset.loadCSV(path: config.data.train)
            test = try config.data.test.map { try Dataset.loadCSV(path: $0) }
        }
        if let limit = config.data.trainLimit { train.limit(to: limit) }
        try train.applyNormalization(config.data.normalize, statisticsFrom: nil)
        try test?.applyNormalization(config.data.normalize, statisticsFrom: train)

        let outputUnits = config.model.layers.last!.units
        switch config.loss {
        case .crossEntropy:
            if outputUnits < 2 {
                throw UserError("model.layers: cross_entropy needs at least 2 output units, the last layer has \(outputUnits)")
            }
            try train.validateClassLabels(classCount: outputUnits)
            try test?.validateClassLabels(classCount: outputUnits)
        case .binaryCrossEntropy:
            if outputUnits != 1 {
                throw UserError("model.layers: binary_cross_entropy needs 1 output unit (a logit), the last layer has \(outputUnits)")
            }
            try train.validateClassLabels(classCount: 2)
            try test?.validateClassLabels(classCount: 2)
        case .meanSquaredError:
            if outputUnits != 1 {
                throw UserError("model.layers: mse compares one output with the label column, the last layer has \(outputUnits) units")
            }
        }

        let network = Network(inputWidth: train.featureCount,
                              layers: config.model.layers.map { ($0.units, $0.activation) }, threads: threads)
        let biasValue: Float
        switch config.model.biasInitialization {
        case .zeros: biasValue = 0
        case let .constant(value): biasValue = value
        }
        network.initialize(weights: config.model.weightInitialization, biasValue: biasValue, seed: config.seed)
        if let path = config.model.initFrom {
            try ModelFile.load(try SafeTensors.read(path: path).tensors, into: network, source: path)
        }
        return (train, test, network)
    }

    static func createRunDirectory(_ path: String, config: TrainingConfig) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            try config.yaml.write(toFile: (path as NSString).appendingPathComponent("config.yaml"), atomically: true,
                                  encoding: .utf8)
        } catch {
            throw UserError("\(path): cannot create the run directory (\(describeFileError(error)))")
        }
    }

    /// Stops with a clear error when ranks were started with different configs or builds.
    func checkRanksAgree() throws {
        var hasher = SHA256()
        hasher.update(bytes: Array(config.yaml.utf8))
        hasher.update(bytes: Array(network.layers.map { "\($0.inputWidth)x\($0.outputWidth):\($0.activation)" }
            .joined(separator: ",").utf8))
        hasher.update(bytes: Array("\(train.count) \(test?.count ?? -1)".utf8))
        let digest = hasher.finalize()
        let value = digest.prefix(8).reduce(Int64(0)) { $0 << 8 | Int64($1) }
        let low = try communicator.allreduceMin(value), high = try communicator.allreduceMax(value)
        if low != high {
            throw RankDisagreement("ranks disagree on the resolved config, parameter layout or data sizes "
                + "(config hash differs between ranks); start every rank with the same config, data and binary")
        }
    }

    func warnIfOversubscribed() {
        guard communicator.rank == 0 else { return }
        let environment = ProcessInfo.processInfo.environment
        let ranksPerNode = ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"]
            .compactMap { environment[$0].flatMap { Int($0) } }.first ?? 1
        let cores = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        if ranksPerNode * threads > cores {
            progress.warn("\(ranksPerNode) ranks × \(threads) threads on this node exceed its \(cores) cores; "
                + "expect slower steps (set training.threads or use fewer ranks)")
        }
    }

    /// Trains for `training.epochs`, writes metrics, checkpoints, summary and final weights; every rank calls it.
    ///
    /// A stop signal (SIGUSR1, SIGTERM, SIGINT) on any rank makes all ranks finish the step, save a checkpoint and
    /// throw `TrainingStopped`; a non-finite loss or gradient throws `TrainingDiverged` without saving.
    public func run() throws -> RunSummary {
        StopSignal.install()
        let rank = communicator.rank, worldSize = communicator.size
        let metrics = rank == 0 ? try MetricsLog(path: path("metrics.jsonl"), append: resumedFrom != nil,
                                                 keepingEpochs: position.epoch) : nil
        progress.start(config: config, network: network, worldSize: worldSize, threads: threads,
                       trainCount: train.count, testCount: test?.count, runDirectory: runDirectory)
        if let resumedFrom { progress.note("resuming from \(resumedFrom) (step \(position.step))") }
        let stepsPerEpoch = (train.count + config.training.batchSize - 1) / config.training.batchSize
        var lastEvaluation: Evaluation?
        var lastTrainLoss = 0.0
        let workspace = StepWorkspace(trainer: self)

        while position.epoch < config.training.epochs {
            let order = epochOrder(position.epoch)
            let epochStart = Date(), secondsBefore = position.trainingSeconds
            let firstBatch = position.batchIndex
            while position.batchIndex < stepsPerEpoch {
                let stepStart = Date()
                let outcome = try trainStep(batchIndex: position.batchIndex, order: order, workspace: workspace)
                position.batchIndex += 1
                position.step += 1
                position.epochLossSum += outcome.lossSum
                position.trainedSamples += outcome.samples
                position.trainingSeconds += Date().timeIntervalSince(stepStart)
                progress.step(epoch: position.epoch, epochs: config.training.epochs, stepInEpoch: position.batchIndex,
                              stepsPerEpoch: stepsPerEpoch, loss: outcome.lossSum / Double(max(1, outcome.samples)),
                              samples: (position.batchIndex - firstBatch) * config.training.batchSize, since: epochStart,
                              every: config.logging.everySteps)
                if outcome.stopRequested {
                    let saved = try saveCheckpoint()
                    throw TrainingStopped(step: position.step, checkpoint: saved)
                }
                if let every = config.checkpoint.everySteps, position.step % every == 0, position.batchIndex < stepsPerEpoch {
                    try saveCheckpoint()
                }
            }
            lastTrainLoss = position.epochLossSum / Double(train.count)
            lastEvaluation = try test.map { try evaluate(on: $0) }
            let epochSeconds = position.trainingSeconds - secondsBefore
            let record = EpochRecord(epoch: position.epoch + 1, step: position.step,
                                     learningRate: Double(schedule.rate(atStep: max(0, position.step - 1))),
                                     trainLoss: lastTrainLoss, testLoss: lastEvaluation?.loss,
                                     testAccuracy: lastEvaluation?.accuracy,
                                     samplesPerSecond: Double((stepsPerEpoch - firstBatch) * config.training.batchSize)
                                         / max(epochSeconds, 1e-9),
                                     elapsedSeconds: Date().timeIntervalSince(startTime))
            try metrics?.append(record)
            progress.epoch(record, epochs: config.training.epochs)
            position.epoch += 1
            position.batchIndex = 0
            position.epochLossSum = 0
            if let every = config.checkpoint.everyEpochs, position.epoch % every == 0 || position.epoch == config.training.epochs {
                try saveCheckpoint()
            }
        }

        let summary = RunSummary(
            worldSize: worldSize, threadsPerRank: threads, epochs: config.training.epochs, steps: position.step,
            trainLoss: lastTrainLoss, testLoss: lastEvaluation?.loss,
            testAccuracy: config.loss.isClassification ? lastEvaluation?.accuracy : nil,
            samplesPerSecond: Double(position.trainedSamples) / max(position.trainingSeconds, 1e-9),
            wallSeconds: Date().timeIntervalSince(startTime), paramSHA256: ModelFile.parameterHash(of: network))
        if rank == 0 {
            try ModelFile.write(network, config: config, normalization: train.normalizationRecord, to: path("final.safetensors"))
            try writeJSON(summary, to: path("summary.json"))
            progress.finish(summary, runDirectory: runDirectory)
        }
        return summary
    }

    /// Runs `steps` training steps from the start (no files written) and returns where the time went.
    public func benchmark(steps: Int, warmupSteps: Int = 5) throws -> StepTimings {
        separatesWait = communicator.size > 1
        defer { separatesWait = false }
        let workspace = StepWorkspace(trainer: self)
        let stepsPerEpoch = (train.count + config.training.batchSize - 1) / config.training.batchSize
        var order = epochOrder(0)
        for index in 0..<(warmupSteps + steps) {
            if index == warmupSteps { timings = StepTimings() }
            if index > 0 && index % stepsPerEpoch == 0 { order = epochOrder(index / stepsPerEpoch) }
            _ = try trainStep(batchIndex: index % stepsPerEpoch, order: order, workspace: workspace)
        }
        return timings
    }

    func epochOrder(_ epoch: Int) -> [Int32] {
        config.training.shuffle ? epochPermutation(count: train.count, seed: config.seed, epoch: epoch)
            : (0..<train.count).map { Int32($0) }
    }

    /// Rank 0 writes a checkpoint of the current position (every rank calls this at the same step).
    @discardableResult
    func saveCheckpoint() throws -> String? {
        guard communicator.rank == 0 else { return nil }
        return try Checkpoint.write(network: network, optimizer: optimizer, position: position, config: config,
                                    normalization: train.normalizationRecord, runDirectory: runDirectory,
                                    keep: config.checkpoint.keep)
    }

    /// What one step reports back to the loop (identical on every rank).
    struct StepOutcome {
        var lossSum: Double
        var samples: Int
        var stopRequested: Bool
    }

    /// Buffers a step reuses, sized once for this rank's largest share of a batch.
    final class StepWorkspace {
        let input: UnsafeMutablePointer<Float>
        let labels: UnsafeMutablePointer<Float>
        let outputGradient: UnsafeMutablePointer<Float>
        /// Fixed-point gradient sums (deterministic mode only).
        let fixedPoint: UnsafeMutableBufferPointer<Int64>
        /// The per-step agreement: batch loss sum, stop request, non-finite or overflow on some rank.
        let agreement = UnsafeMutableBufferPointer<Double>.allocate(capacity: 3)

        init(trainer: Trainer) {
            let capacity = max(1, trainer.localBatchCapacity)
            trainer.network.reserve(batchCapacity: max(capacity, trainer.config.training.evaluationBatchSize))
            input = .allocate(capacity: capacity * trainer.train.featureCount)
            labels = .allocate(capacity: capacity)
            outputGradient = .allocate(capacity: capacity * trainer.network.outputWidth)
            fixedPoint = .allocate(capacity: trainer.config.training.deterministic ? trainer.network.parameterCount : 0)
        }

        deinit {
            input.deallocate(); labels.deallocate(); outputGradient.deallocate(); fixedPoint.deallocate()
            agreement.deallocate()
        }
    }

    /// The most rows this rank computes in one step.
    var localBatchCapacity: Int {
        let batch = config.training.batchSize
        if config.training.deterministic {
            let group = config.training.deterministicGroup
            let groups = shard(of: (batch + group - 1) / group, rank: 0, worldSize: communicator.size).count
            return min(batch, groups * group)
        }
        return shard(of: batch, rank: 0, worldSize: communicator.size).count
    }

    /// This rank's rows of a global batch of `count` samples: contiguous; whole fixed groups in deterministic mode.
    func localRows(ofBatch count: Int) -> Range<Int> {
        guard config.training.deterministic else { return shard(of: count, rank: communicator.rank, worldSize: communicator.size) }
        let group = config.training.deterministicGroup
        let groups = shard(of: (count + group - 1) / group, rank: communicator.rank, worldSize: communicator.size)
        return min(count, groups.lowerBound * group)..<min(count, groups.upperBound * group)
    }

    /// One optimizer step on global batch `batchIndex`: batch → forward → loss → backward → allreduce → step.
    func trainStep(batchIndex: Int, order: [Int32], workspace: StepWorkspace) throws -> StepOutcome {
        let batchSize = config.training.batchSize
        let batchStart = batchIndex * batchSize
        let globalCount = min(batchSize, train.count - batchStart)
        let mine = localRows(ofBatch: globalCount)
        let count = mine.count
        let outputs = network.outputWidth
        var clock = StepClock()

        order.withUnsafeBufferPointer {
            train.gather(rows: UnsafeBufferPointer(rebasing: $0[(batchStart + mine.lowerBound)..<(batchStart + mine.upperBound)]),
                         features: workspace.input, labels: workspace.labels, threads: threads)
        }
        timings.data += clock.lap()
        let prediction = network.forward(input: workspace.input, batch: count)
        timings.forward += clock.lap()
        let totals = config.loss.evaluate(outputs: prediction, labels: workspace.labels, batch: count, width: outputs,
                                          gradient: workspace.outputGradient, gradientScale: 1 / Float(globalCount))
        var localProblem = totals.lossSum.isFinite ? 0.0 : 1.0
        if config.training.deterministic {
            // Each fixed group's gradient is summed exactly in fixed point, so no float sum depends on the layout.
            let group = config.training.deterministicGroup
            var start = 0
            while start < count {
                let rows = min(group, count - start)
                network.backward(input: workspace.input + start * train.featureCount,
                                 outputGradient: workspace.outputGradient + start * outputs, batch: rows, rowOffset: start)
                if !accumulateFixedPoint(network.gradients.baseAddress!, into: workspace.fixedPoint.baseAddress!,
                                         count: network.parameterCount, threads: threads, replacing: start == 0) {
                    localProblem = 1
                }
                start += rows
            }
            if count == 0 { workspace.fixedPoint.initialize(repeating: 0) }
            timings.backward += clock.lap()
            try waitForSlowestRankIfMeasuring(&clock)
            try communicator.allreduceSum(workspace.fixedPoint)
            fixedPointToFloat(workspace.fixedPoint.baseAddress!, into: network.gradients.baseAddress!, count: network.parameterCount)
        } else {
            network.backward(input: workspace.input, outputGradient: workspace.outputGradient, batch: count)
            timings.backward += clock.lap()
            try waitForSlowestRankIfMeasuring(&clock)
            try communicator.allreduceSum(network.gradients)
        }
        // One small allreduce agrees on the batch loss, a stop request and any rank's non-finite values.
        let agreed = workspace.agreement
        agreed[0] = totals.lossSum
        agreed[1] = StopSignal.requested ? 1 : 0
        agreed[2] = localProblem
        try communicator.allreduceSum(agreed)
        timings.allreduce += clock.lap()
        let norm = network.gradientNorm()
        if agreed[2] > 0 || !agreed[0].isFinite || !norm.isFinite {
            throw TrainingDiverged(step: position.step + 1, epoch: position.epoch + 1, loss: agreed[0] / Double(globalCount),
                                   fixedPointOverflow: config.training.deterministic && agreed[0].isFinite && norm.isFinite,
                                   lastCheckpoint: Checkpoint.checkpointFiles(in: runDirectory).last)
        }
        if let maximum = config.training.clipGradientNorm, norm > maximum {
            scale(network.gradients.baseAddress!, count: network.parameterCount, by: Float(maximum / (norm + 1e-6)), threads: threads)
        }
        optimizer.step(parameters: network.parameters.baseAddress!, gradients: network.gradients.baseAddress!,
                       learningRate: schedule.rate(atStep: position.step), threads: threads)
        timings.optimizer += clock.lap()
        timings.steps += 1
        timings.samples += globalCount
        return StepOutcome(lossSum: agreed[0], samples: globalCount, stopRequested: agreed[1] > 0)
    }

    /// In `benchmark`, a barrier before the allreduce splits waiting for the slowest rank from the transfer.
    private func waitForSlowestRankIfMeasuring(_ clock: inout StepClock) throws {
        guard separatesWait else { return }
        try communicator.barrier()
        timings.wait += clock.lap()
    }

    /// Loss and accuracy over a dataset, sharded across ranks and reduced.
    public struct Evaluation {
        public var loss: Double
        public var accuracy: Double
        public var count: Int
    }

    func evaluate(on data: Dataset) throws -> Evaluation {
        let mine = shard(of: data.count, rank: communicator.rank, worldSize: communicator.size)
        let local = evaluateRows(mine, of: data, network: network, loss: config.loss, batchSize: config.training.evaluationBatchSize)
        let sums = try communicator.allreduceSum([local.lossSum, Double(local.correct)])
        return Evaluation(loss: sums[0] / Double(max(1, data.count)), accuracy: sums[1] / Double(max(1, data.count)),
                          count: data.count)
    }

    func path(_ name: String) -> String { (runDirectory as NSString).appendingPathComponent(name) }
}

/// Sums loss and correct predictions over `rows` of `data`, in batches.
public func evaluateRows(_ rows: Range<Int>, of data: Dataset, network: Network, loss: Loss, batchSize: Int) -> Loss.BatchTotals {
    var totals = Loss.BatchTotals()
    guard !rows.isEmpty else { return totals }
    let width = data.featureCount
    network.reserve(batchCapacity: batchSize)
    let input = UnsafeMutablePointer<Float>.allocate(capacity: batchSize * width)
    let labels = UnsafeMutablePointer<Float>.allocate(capacity: batchSize)
    defer { input.deallocate(); labels.deallocate() }
    var indices = [Int32](repeating: 0, count: batchSize)
    var start = rows.lowerBound
    while start < rows.upperBound {
        let count = min(batchSize, rows.upperBound - start)
        for i in 0..<count { indices[i] = Int32(start + i) }
        indices.withUnsafeBufferPointer {
            data.gather(rows: UnsafeBufferPointer(rebasing: $0[0..<count]), features: input, labels: labels)
        }
        let outputs = network.forward(input: input, batch: count)
        let batch = loss.evaluate(outputs: outputs, labels: labels, batch: count, width: network.outputWidth,
                                  gradient: nil, gradientScale: 0)
        totals.lossSum += batch.lossSum
        totals.correct += batch.correct
        start += count
    }
    return totals
}

/// Ranks were started inconsistently (a user error: exit 2).
struct RankDisagreement: AgreedStop {
    let description: String
    var exitStatus: Int32 { 2 }
    init(_ description: String) { self.description = description }
}

/// Runs `body` on every rank, then lets all ranks learn whether any failed: the lowest failing rank prints its
/// message and every rank exits with 2 (user error) or 1, so no rank waits forever in a later collective.
public func collectively(_ communicator: Communicator, _ body: () throws -> Void) throws {
    var failure: Error?
    do { try body() } catch { failure = error }
    let firstFailing = try communicator.allreduceMin(Int64(failure == nil ? communicator.size : communicator.rank))
    guard firstFailing < Int64(communicator.size) else { return }
    let anyInternal = try communicator.allreduceMax(Int64(failure.map { isUserError($0) ? 0 : 1 } ?? 0))
    if Int64(communicator.rank) == firstFailing, let failure {
        reportError(failure, rank: communicator.rank, worldSize: communicator.size)
    }
    communicator.finalize()
    exit(anyInternal == 0 ? 2 : 1)
}

/// Whether an error is the user's mistake (exit status 2).
public func isUserError(_ error: Error) -> Bool { error is UserError || error is RankDisagreement }

/// Prints one line for `error` on stderr, prefixed with the rank when there are several.
public func reportError(_ error: Error, rank: Int, worldSize: Int) {
    let prefix = worldSize > 1 ? "plexus: rank \(rank): " : "plexus: "
    // One line whatever the error carries (a path from YAML may hold a line break).
    let text = String(describing: error).replacingOccurrences(of: "\n", with: "\\n")
    FileHandle.standardError.write(Data((prefix + (isUserError(error) || error is AgreedStop ? "" : "error: ") + text + "\n").utf8))
}

func describeFileError(_ error: Error) -> String {
    let nsError = error as NSError
    if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
        return String(cString: strerror(Int32(underlying.code)))
    }
    return nsError.localizedDescription
}

func writeJSON<T: Encodable>(_ value: T, to path: String) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    let data = try encoder.encode(value)
    do {
        try (data + Data("\n".utf8)).write(to: URL(fileURLWithPath: path), options: .atomic)
    } catch {
        throw UserError("\(path): cannot write (\(describeFileError(error)))")
    }
}
