/// Training: a run: setup, the loop, checkpoints, the model file, tasks, inference and the commands built on them.

import Config
import DataParallel
import Distributed
import Foundation
import NeuralNet
import Observe
import Support

/// Runs the epochs of one training run; every rank runs the same calls, only rank 0 writes files and prints.
///
/// The loop reads like llm.c's: step → advance → stop? → checkpoint, then the epoch's end; what happens around the
/// steps is values it calls — the checkpoint policy (steps, seconds, epochs), the epoch end (evaluation, metrics,
/// best weights, early stopping) and the run's finish (summary and final weights).
final class Trainer {
    let setup: TrainingSetup
    let files: RunDirectory
    /// Rank 0's first line, live line and epoch lines.
    let progress: ProgressReporter
    /// One optimizer step over every rank.
    let step: TrainingStep
    /// TensorBoard events, the timeline and curves.svg.
    let recorder: RunRecorder
    /// What runs around the steps: checkpoints, the end of each epoch, the end of the run.
    let checkpoints: CheckpointPolicy, epochEnd: EpochEnd, runFinish: RunFinish
    /// Where training stands (advanced after every step).
    private(set) var position: TrainingPosition
    /// Counts `train_seconds` from the first step of this process on.
    private var clock = TrainClock(before: 0)

    /// A trainer for `setup` writing to `files` (whose directory rank 0 has created).
    init(setup: TrainingSetup, files: RunDirectory, progressMode: ProgressMode = .auto, startTime: Date = Date()) throws {
        let config = setup.config, communicator = setup.communicator, isRoot = communicator.rank == 0
        self.setup = setup
        self.files = files
        position = setup.position
        position.earlyStopping = EarlyStoppingState.start(config: config, hasValidation: setup.data.validation != nil,
                                                          saved: setup.position.earlyStopping)
        progress = ProgressReporter(enabled: isRoot, interactive: progressMode.isLive)
        // The largest batch the network runs: a share of the global batch, or an evaluation batch.
        setup.network.reserve(batchCapacity: config.training.evaluationBatchSize)
        let shares = BatchShares(config.reductionOptions, communicator: communicator)
        let reduction = try makeGradientReduction(config.reductionOptions, network: setup.network, communicator: communicator,
                                                  threads: setup.threads, state: setup.reductionState, shares: shares)
        if config.optimizer.kind.isLayerwise && reduction.updateRange.count != setup.network.parameterCount {
            throw AgreedUserError("optimizer.name \(config.optimizer.kind.rawValue) takes norms over whole layers, and the "
                + "ranks of a node each step a slice of them here; set distributed.shared_memory false or run one rank per node")
        }
        let synchronization = try makeSynchronization(config.syncOptions, reduction: reduction, network: setup.network,
                                                      optimizer: setup.optimizer, communicator: communicator,
                                                      state: setup.syncState)
        let pace = try RankPace.gathering(communicator)
        let balance = config.distributed.balance && pace != nil
            ? try ShareBalance(shares, state: setup.balanceState, communicator: communicator) : nil
        // Shares a checkpoint kept: the parameter slices follow them from the first step.
        if balance != nil && shares.weights != nil { try reduction.followShares(optimizer: setup.optimizer) }
        step = TrainingStep(network: setup.network, optimizer: setup.optimizer, schedule: setup.schedule, loss: config.loss,
                            rows: setup.train, reduction: reduction, communicator: communicator,
                            options: config.stepOptions(threads: setup.threads), synchronization: synchronization,
                            stopRequested: { StopSignal.requested }, pace: pace, balance: balance)
        recorder = RunRecorder(options: config.logging, files: files, communicator: communicator, network: setup.network,
                               learningRate: { [schedule = setup.schedule] in schedule.rate(atStep: $0) }, pace: pace)
        let writer = CheckpointWriter(setup: setup, synchronization: synchronization, balance: balance, recorder: recorder,
                                      files: files)
        checkpoints = CheckpointPolicy(config.checkpoint, epochs: config.training.epochs, isRoot: isRoot, writer: writer)
        let metrics = isRoot ? try MetricsLog(path: files[.metrics], resuming: setup.resumedFrom != nil,
                                              keepingEpochs: position.epoch) : nil
        epochEnd = EpochEnd(setup: setup, files: files, recorder: recorder, progress: progress, metrics: metrics,
                            pace: pace, startTime: startTime)
        runFinish = RunFinish(setup: setup, files: files, recorder: recorder, progress: progress, startTime: startTime)
    }

    /// Trains for `training.epochs`, writes metrics, checkpoints, summary and final weights; every rank calls it.
    ///
    /// A stop signal (SIGUSR1, SIGTERM, SIGINT) on any rank makes all ranks finish the step, save a checkpoint and
    /// throw `TrainingStopped`; a non-finite loss or gradient throws `TrainingDiverged` without saving.
    func run() throws -> RunSummary {
        StopSignal.install()
        try begin()
        clock = TrainClock(before: position.trainSeconds ?? 0)
        let stepsPerEpoch = setup.stepsPerEpoch
        while position.epoch < setup.config.training.epochs && position.earlyStopping?.stopped != true {
            let order = setup.epochOrder(position.epoch), epochStart = EpochStart(position)
            while position.batchIndex < stepsPerEpoch {
                let started = Date()
                let lastOfEpoch = position.batchIndex + 1 == stepsPerEpoch
                let outcome = try step.run(batchIndex: position.batchIndex, of: order, step: position.step,
                                           checkpointDue: checkpoints.timeDue,
                                           synchronize: lastOfEpoch || checkpoints.dueByStep(after: position.step + 1))
                try advance(past: outcome, started: started, epochStart: epochStart)
                if outcome.stopRequested { throw try stop() }
                try checkpoints.afterStep(outcome, at: position, lastOfEpoch: position.batchIndex == stepsPerEpoch)
            }
            try epochEnd.run(&position, started: epochStart, clock: clock)
            try checkpoints.afterEpoch(at: position)
        }
        return try runFinish.run(position, epochEnd: epochEnd)
    }

    /// Before the first step: the run's first line and notes, the validation files, the recorder.
    private func begin() throws {
        let data = setup.data
        if let warning = setup.oversubscriptionWarning { progress.warn(warning) }
        progress.start(config: setup.config, network: setup.network, worldSize: setup.communicator.size, threads: setup.threads,
                       kernel: setup.kernelName, trainCount: data.train.count, validationCount: data.validation?.count,
                       testCount: data.test?.count, runDirectory: files.path)
        if setup.communicator.size > 1 { progress.note("gradient reduction: \(step.reduction)") }
        if !(step.synchronization is EveryStepSync) { progress.note("periodic synchronization: \(step.synchronization)") }
        try epochEnd.prepareValidationFiles()
        if let resumedFrom = setup.resumedFrom { progress.note("resuming from \(resumedFrom) (step \(position.step))") }
        step.observer = try recorder.start(at: position.progress, resuming: setup.resumedFrom != nil, configText: setup.config.yaml)
        checkpoints.restartClock()
    }

    /// After a step: stops on divergence, else advances the position and tells the recorder and the progress line.
    private func advance(past outcome: TrainingStep.Outcome, started: Date, epochStart: EpochStart) throws {
        if let divergence = outcome.divergence {
            throw TrainingDiverged(step: divergence.step + 1, epoch: position.epoch + 1, loss: divergence.loss,
                                   fixedPointOverflow: divergence.fixedPointOverflow,
                                   lastCheckpoint: Checkpoint.checkpointFiles(in: files).last)
        }
        position.batchIndex += 1
        position.step += 1
        position.epochLossSum += outcome.agreedLossSum
        position.trainedSamples += outcome.samples
        position.trainingSeconds += Date().timeIntervalSince(started)
        position.trainSeconds = clock.seconds
        try recorder.stepFinished(position.progress, lossSum: outcome.lossSum, samples: outcome.samples,
                                  gradients: step.reduction.reducedGradients)
        progress.step(epoch: position.epoch, epochs: setup.config.training.epochs, stepInEpoch: position.batchIndex,
                      stepsPerEpoch: setup.stepsPerEpoch, loss: outcome.lossSum / Double(max(1, outcome.samples)),
                      samples: (position.batchIndex - epochStart.batchIndex) * setup.config.training.batchSize,
                      since: epochStart.date, every: setup.config.logging.everySteps)
    }

    /// A stop the ranks agreed on: a checkpoint, the recorder's files, then the error that ends the run (status 75).
    private func stop() throws -> TrainingStopped {
        let checkpoint = try checkpoints.save(position)
        try recorder.finish()
        return TrainingStopped(step: position.step, checkpoint: checkpoint)
    }
}

/// `train_seconds`: the seconds a resumed run had trained before, plus the time since this process's first step.
struct TrainClock {
    let start = Date()
    let before: Double

    var seconds: Double { before + Date().timeIntervalSince(start) }
}

/// Where and when an epoch (or its resumed part) began: its samples/s and progress line count from here.
struct EpochStart {
    let date = Date()
    let batchIndex: Int
    let trainingSeconds: Double

    init(_ position: TrainingPosition) {
        batchIndex = position.batchIndex
        trainingSeconds = position.trainingSeconds
    }
}
