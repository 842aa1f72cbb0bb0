import Dispatch
import Distributed
import Foundation
import NeuralNet

/// Runs the epochs of one training run: the steps, checkpoints, per-epoch evaluation and metrics, and the summary
/// and final weights. Every rank runs the same calls; only rank 0 writes files and prints.
public final class Trainer {
    public let setup: TrainingSetup
    public let runDirectory: String
    let progress: ProgressReporter
    let startTime: Date
    let step: TrainingStep
    /// TensorBoard events, the timeline and curves.svg.
    let recorder: RunRecorder
    /// Where training stands (advanced after every step).
    public internal(set) var position: TrainingPosition
    /// When the last checkpoint was saved (or training started): `checkpoint.every_seconds` counts from here.
    private var lastCheckpoint = DispatchTime.now()

    /// A trainer for `setup` writing to `runDirectory` (which rank 0 has created).
    public init(setup: TrainingSetup, runDirectory: String, progressMode: ProgressMode = .auto, startTime: Date = Date()) throws {
        self.setup = setup
        self.runDirectory = runDirectory
        self.startTime = startTime
        position = setup.position
        position.earlyStopping = EarlyStoppingState.start(config: setup.config, hasValidation: setup.validation != nil,
                                                          saved: setup.position.earlyStopping)
        progress = ProgressReporter(enabled: setup.communicator.rank == 0, interactive: progressMode.isLive)
        step = TrainingStep(setup: setup, reduction: try makeGradientReduction(
            for: setup.config, network: setup.network, communicator: setup.communicator, threads: setup.threads,
            state: setup.reductionState))
        recorder = RunRecorder(setup: setup, runDirectory: runDirectory)
    }

    /// Trains for `training.epochs`, writes metrics, checkpoints, summary and final weights; every rank calls it.
    ///
    /// A stop signal (SIGUSR1, SIGTERM, SIGINT) on any rank makes all ranks finish the step, save a checkpoint and
    /// throw `TrainingStopped`; a non-finite loss or gradient throws `TrainingDiverged` without saving.
    public func run() throws -> RunSummary {
        StopSignal.install()
        let config = setup.config, epochs = config.training.epochs, batchSize = config.training.batchSize
        let isRoot = setup.communicator.rank == 0
        let metrics = isRoot ? try MetricsLog(path: path("metrics.jsonl"), resuming: setup.resumedFrom != nil,
                                              keepingEpochs: position.epoch) : nil
        if let warning = setup.oversubscriptionWarning { progress.warn(warning) }
        progress.start(config: config, network: setup.network, worldSize: setup.communicator.size, threads: setup.threads,
                       kernel: setup.kernel,
                       trainCount: setup.train.count, validationCount: setup.validation?.count, testCount: setup.test?.count,
                       runDirectory: runDirectory)
        if setup.communicator.size > 1 { progress.note("gradient reduction: \(step.reduction)") }
        try prepareValidationFiles()
        if let resumedFrom = setup.resumedFrom { progress.note("resuming from \(resumedFrom) (step \(position.step))") }
        step.observer = try recorder.start()
        let stepsPerEpoch = setup.stepsPerEpoch
        var lastEvaluation = MetricValues()
        var lastTrainLoss = 0.0
        // A time checkpoint that fell on an epoch's last step is saved at the epoch's end.
        var checkpointAtEpochEnd = false
        lastCheckpoint = DispatchTime.now()

        while position.epoch < epochs && position.earlyStopping?.stopped != true {
            let order = setup.epochOrder(position.epoch)
            let epochStart = Date(), secondsBefore = position.trainingSeconds
            let firstBatch = position.batchIndex
            while position.batchIndex < stepsPerEpoch {
                let stepStart = Date()
                let outcome = try step.run(batchIndex: position.batchIndex, of: order, step: position.step,
                                           checkpointDue: isRoot && checkpointByTimeDue)
                if let divergence = outcome.divergence {
                    throw TrainingDiverged(step: position.step + 1, epoch: position.epoch + 1, loss: divergence.loss,
                                           fixedPointOverflow: divergence.fixedPointOverflow,
                                           lastCheckpoint: Checkpoint.checkpointFiles(in: runDirectory).last)
                }
                position.batchIndex += 1
                position.step += 1
                position.epochLossSum += outcome.lossSum
                position.trainedSamples += outcome.samples
                position.trainingSeconds += Date().timeIntervalSince(stepStart)
                try recorder.stepFinished(position: position, lossSum: outcome.lossSum, samples: outcome.samples,
                                          gradients: step.reduction.reducedGradients)
                progress.step(epoch: position.epoch, epochs: epochs, stepInEpoch: position.batchIndex,
                              stepsPerEpoch: stepsPerEpoch, loss: outcome.lossSum / Double(max(1, outcome.samples)),
                              samples: (position.batchIndex - firstBatch) * batchSize, since: epochStart,
                              every: config.logging.everySteps)
                if outcome.stopRequested {
                    let checkpoint = try saveCheckpoint()
                    try recorder.finish()
                    throw TrainingStopped(step: position.step, checkpoint: checkpoint)
                }
                let byStep = config.checkpoint.everySteps.map { position.step % $0 == 0 } ?? false
                if byStep || outcome.checkpointRequested {
                    if position.batchIndex < stepsPerEpoch {
                        try saveCheckpoint()
                    } else {
                        checkpointAtEpochEnd = checkpointAtEpochEnd || outcome.checkpointRequested
                    }
                }
            }
            lastTrainLoss = position.epochLossSum / Double(setup.train.count)
            lastEvaluation = MetricValues()
            setup.communicator.activity = .evaluation(epoch: position.epoch + 1)
            for (data, prefix) in [(setup.validation, "val"), (setup.test, "test")] {
                guard let data else { continue }
                lastEvaluation = try recorder.span(.evaluation, step: position.step) {
                    MetricValues(lastEvaluation.entries + (try evaluate(
                        setup.network, on: data, task: setup.task, loss: config.loss, batchSize: config.training.evaluationBatchSize,
                        communicator: setup.communicator).prefixed(prefix).entries))
                }
            }
            let epochSeconds = position.trainingSeconds - secondsBefore
            let record = EpochRecord(epoch: position.epoch + 1, step: position.step,
                                     learningRate: Double(setup.schedule.rate(atStep: max(0, position.step - 1))),
                                     trainLoss: lastTrainLoss, evaluation: lastEvaluation,
                                     samplesPerSecond: Double((stepsPerEpoch - firstBatch) * batchSize) / max(epochSeconds, 1e-9),
                                     elapsedSeconds: Date().timeIntervalSince(startTime))
            try metrics?.append(record)
            try recorder.epochFinished(record)
            progress.epoch(record, epochs: epochs)
            try recordValidation(lastEvaluation, epoch: position.epoch + 1)
            position.epoch += 1
            position.batchIndex = 0
            position.epochLossSum = 0
            let byEpoch = config.checkpoint.everyEpochs.map {
                position.epoch % $0 == 0 || position.epoch == epochs || position.earlyStopping?.stopped == true
            } ?? false
            if byEpoch || checkpointAtEpochEnd {
                try saveCheckpoint()
                checkpointAtEpochEnd = false
            }
        }

        let summary = RunSummary(
            worldSize: setup.communicator.size, threadsPerRank: setup.threads, kernel: setup.kernel.rawValue,
            epochs: position.epoch, epochsAllowed: epochs,
            steps: position.step, trainLoss: lastTrainLoss, evaluation: lastEvaluation, bestEpoch: position.earlyStopping,
            samplesPerSecond: Double(position.trainedSamples) / max(position.trainingSeconds, 1e-9),
            wallSeconds: Date().timeIntervalSince(startTime), paramSHA256: ModelFile.parameterHash(of: setup.network),
            restarts: isRoot ? RestartLog.count(in: runDirectory) : 0)
        if isRoot {
            try ModelFile.write(setup.network, config: config, normalization: setup.train.normalizationRecord,
                                to: path("final.safetensors"))
            try FileIO.writeAtomically(JSON.text(summary, pretty: true) + "\n", to: path("summary.json"))
        }
        try recorder.finish()
        if isRoot { progress.finish(summary, runDirectory: runDirectory) }
        return summary
    }

    /// Whether `checkpoint.every_seconds` have passed since the last checkpoint (rank 0's clock decides).
    private var checkpointByTimeDue: Bool {
        guard let seconds = setup.config.checkpoint.everySeconds else { return false }
        return Double(DispatchTime.now().uptimeNanoseconds - lastCheckpoint.uptimeNanoseconds) * 1e-9 >= seconds
    }

    /// Rank 0 writes a checkpoint of the current position (every rank calls this at the same step).
    @discardableResult
    func saveCheckpoint() throws -> String? {
        // The clock restarts when the write is done: a save slower than `every_seconds` (a busy file system) must
        // not make every following step save again.
        defer { lastCheckpoint = DispatchTime.now() }
        let reductionState = try step.reduction.checkpointState(optimizer: setup.optimizer)
        return try recorder.span(.checkpoint, step: position.step) {
            guard setup.communicator.rank == 0 else { return nil }
            return try Checkpoint.write(network: setup.network, optimizer: setup.optimizer, reductionState: reductionState,
                                        position: position, config: setup.config,
                                        normalization: setup.train.normalizationRecord, runDirectory: runDirectory,
                                        keep: setup.config.checkpoint.keep)
        }
    }

    /// Creates the run directory with its resolved `config.yaml` (rank 0, before training).
    static func createRunDirectory(_ path: String, config: TrainingConfig) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw UserError("\(path): cannot create the run directory (\(describeFileError(error)))")
        }
        try FileIO.writeAtomically(config.yaml, to: (path as NSString).appendingPathComponent("config.yaml"))
    }

    func path(_ name: String) -> String { (runDirectory as NSString).appendingPathComponent(name) }
}
