import Config
import DataParallel
import Distributed
import Foundation
import Observe
import Support

/// What happens after an epoch's last step: the validation and test metrics, the metrics.jsonl line, TensorBoard
/// and the progress line, the best epoch's weights and early stopping's decision. Every rank calls it.
final class EpochEnd {
    let setup: TrainingSetup
    let files: RunDirectory
    let recorder: RunRecorder
    let progress: ProgressReporter
    /// metrics.jsonl (rank 0 only).
    let metrics: MetricsLog?
    /// The ranks' compute times, whose figures each line carries (nil for a world of one).
    let pace: RankPace?
    let startTime: Date
    /// The last epoch's evaluation and mean training loss, for the summary.
    private(set) var lastEvaluation = MetricValues()
    private(set) var lastTrainLoss = 0.0

    init(setup: TrainingSetup, files: RunDirectory, recorder: RunRecorder, progress: ProgressReporter, metrics: MetricsLog?,
         pace: RankPace?, startTime: Date) {
        (self.setup, self.files, self.recorder, self.progress, self.metrics) = (setup, files, recorder, progress, metrics)
        (self.pace, self.startTime) = (pace, startTime)
    }

    /// Rank 0, before the first epoch: a fresh run drops a previous run's best weights; a held-out split is recorded.
    func prepareValidationFiles() throws {
        guard setup.communicator.rank == 0 else { return }
        if setup.resumedFrom == nil { try? FileManager.default.removeItem(atPath: files[.bestWeights]) }
        if let split = setup.data.split { try FileIO.writeAtomically(split.text, to: files[.validationRows]) }
    }

    /// Ends the epoch `position` is in (its steps all taken) and moves `position` to the next epoch's start.
    func run(_ position: inout TrainingPosition, started: EpochStart, clock: TrainClock) throws {
        let config = setup.config, batchSize = config.training.batchSize
        lastTrainLoss = position.epochLossSum / Double(setup.train.count)
        lastEvaluation = try evaluate(after: position)
        position.trainSeconds = clock.seconds
        let epochSeconds = position.trainingSeconds - started.trainingSeconds
        let record = EpochRecord(epoch: position.epoch + 1, step: position.step,
                                 learningRate: Double(setup.schedule.rate(atStep: max(0, position.step - 1))),
                                 trainLoss: lastTrainLoss, evaluation: lastEvaluation,
                                 samplesPerSecond: Double((setup.stepsPerEpoch - started.batchIndex) * batchSize)
                                     / max(epochSeconds, 1e-9),
                                 elapsedSeconds: Date().timeIntervalSince(startTime), trainSeconds: clock.seconds,
                                 pace: pace?.figures)
        try metrics?.append(record)
        try recorder.epochFinished(step: record.step, evaluation: record.evaluation)
        progress.epoch(record, epochs: config.training.epochs)
        try recordValidation(lastEvaluation, epoch: position.epoch + 1, position: &position)
        position.epoch += 1
        position.batchIndex = 0
        position.epochLossSum = 0
    }

    /// The task's metrics on the validation data (`val_*`) and the test data (`test_*`), each a timeline span.
    private func evaluate(after position: TrainingPosition) throws -> MetricValues {
        let config = setup.config
        var evaluation = MetricValues()
        setup.communicator.activity = .evaluation(epoch: position.epoch + 1)
        for (data, prefix) in [(setup.data.validation, "val"), (setup.data.test, "test")] {
            guard let data else { continue }
            evaluation = try recorder.span(.evaluation, step: position.step) {
                MetricValues(evaluation.entries + (try Training.evaluate(
                    setup.network, on: data, task: setup.task, loss: config.loss, batchSize: config.training.evaluationBatchSize,
                    communicator: setup.communicator).prefixed(prefix).entries))
            }
        }
        return evaluation
    }

    /// After epoch `epoch` (1-based) was evaluated: updates the best epoch, writes its weights when it improved, and
    /// says when early stopping ends training. Every rank calls it with the same values.
    private func recordValidation(_ evaluation: MetricValues, epoch: Int, position: inout TrainingPosition) throws {
        guard var state = position.earlyStopping else { return }
        let settings = setup.config.training.earlyStopping
        let improved = state.record(evaluation, epoch: epoch, settings: settings)
        position.earlyStopping = state
        if improved && setup.communicator.rank == 0 {
            try ModelFile.write(setup.network, config: setup.config, normalization: setup.train.normalizationRecord,
                                metadata: ["plexus.best_epoch": String(epoch), "plexus.best_metric": state.metric,
                                           "plexus.best_value": "\(state.bestValue ?? .nan)"],
                                to: files[.bestWeights])
        }
        if state.stopped, let settings {
            progress.note("early stopping after epoch \(epoch) of \(setup.config.training.epochs): \(state.metric) has not improved "
                + "by more than \(settings.minimumDelta) for \(settings.patience) epoch\(settings.patience == 1 ? "" : "s")"
                + "; best epoch \(state.bestEpoch ?? 0) (\(state.metric) " + String(format: "%.4f", state.bestValue ?? .nan) + ")")
        }
    }
}

/// The end of a run: summary.json and final.safetensors (rank 0), the recorder's files, the last progress line.
struct RunFinish {
    let setup: TrainingSetup
    let files: RunDirectory
    let recorder: RunRecorder
    let progress: ProgressReporter
    let startTime: Date

    /// Finishes the run at `position`, whose last epoch `epochEnd` ended; every rank calls it.
    func run(_ position: TrainingPosition, epochEnd: EpochEnd) throws -> RunSummary {
        let isRoot = setup.communicator.rank == 0
        let summary = RunSummary(
            worldSize: setup.communicator.size, threadsPerRank: setup.threads, kernel: setup.kernelName,
            epochs: position.epoch, epochsAllowed: setup.config.training.epochs,
            steps: position.step, trainLoss: epochEnd.lastTrainLoss, evaluation: epochEnd.lastEvaluation,
            bestEpoch: position.earlyStopping,
            samplesPerSecond: Double(position.trainedSamples) / max(position.trainingSeconds, 1e-9),
            wallSeconds: Date().timeIntervalSince(startTime), paramSHA256: ModelFile.parameterHash(of: setup.network),
            restarts: isRoot ? RestartLog.count(in: files) : 0, memory: try RankMemory.gather(setup.communicator))
        if isRoot {
            try ModelFile.write(setup.network, config: setup.config, normalization: setup.train.normalizationRecord,
                                to: files[.finalWeights])
            try FileIO.writeAtomically(JSON.text(summary, pretty: true) + "\n", to: files[.summary])
        }
        try recorder.finish()
        if isRoot { progress.finish(summary, files: files) }
        return summary
    }
}

/// Every rank's memory peaks, in rank order (summary.json's `peak_rss_bytes` and `peak_private_bytes`).
struct RankMemory: Equatable {
    var peakResidentBytes: [Int64]
    var peakPrivateBytes: [Int64]

    /// Collects each rank's peaks on every rank (one allreduce: each rank fills its own slots).
    static func gather(_ communicator: Communicator) throws -> RankMemory {
        let size = communicator.size, rank = communicator.rank
        var values = [Int64](repeating: 0, count: 2 * size)
        values[rank] = MemoryPeaks.process.residentPeakBytes
        values[size + rank] = MemoryPeaks.process.privatePeakBytes
        try values.withUnsafeMutableBufferPointer { try communicator.allreduceSum($0) }
        return RankMemory(peakResidentBytes: Array(values[..<size]), peakPrivateBytes: Array(values[size...]))
    }
}
