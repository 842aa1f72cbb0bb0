/// Observe: what a run shows about itself: TensorBoard events, the timeline, curves.

import DataParallel
import Distributed
import Foundation
import NeuralNet
import Support

/// What a run shows about itself besides metrics.jsonl and checkpoints, owned by one object the Trainer calls:
/// the TensorBoard event file (rank 0), the per-rank timeline (`logging.timeline`) and, at the end, `curves.svg`.
///
/// Every rank makes the same calls. Only `start` (clock alignment) and `finish` (gathering the timeline) communicate,
/// and only with the timeline on; the step observer it hands out never does.
public final class RunRecorder {
    let options: LoggingOptions
    let files: RunDirectory
    let communicator: Communicator
    let network: Network
    /// The learning rate of a step (0-based), for `train/lr`.
    let learningRate: (Int) -> Float
    /// The ranks' compute times, whose figures the timeline carries (nil for a world of one).
    let pace: RankPace?
    private var events: EventFileWriter?
    private var timeline: TimelineRecorder?
    private var alignment: ClockAlignment?
    /// Where the current interval of TensorBoard's `train/*` scalars started, and its loss so far.
    private var intervalStart = TrainingProgress()
    private var intervalLossSum = 0.0
    private var intervalSamples = 0

    /// The tag of the resolved config, written when a run (or a resumed run) starts.
    static let configTag = "config"

    /// A recorder of `network`'s run into `files` (which rank 0 has created).
    public init(options: LoggingOptions, files: RunDirectory, communicator: Communicator, network: Network,
                learningRate: @escaping (Int) -> Float, pace: RankPace? = nil) {
        (self.options, self.files, self.communicator, self.network) = (options, files, communicator, network)
        (self.learningRate, self.pace) = (learningRate, pace)
    }

    private var isRoot: Bool { communicator.rank == 0 }

    /// Opens the event file (rank 0; on resume after cutting what the earlier files hold past the checkpoint) and,
    /// with the timeline on, aligns the ranks' clocks. Returns the observer for the training step (nil when off).
    public func start(at progress: TrainingProgress, resuming: Bool, configText: String) throws -> StepObserver? {
        intervalStart = progress
        if options.timeline {
            alignment = try ClockAlignment.measure(communicator)
            timeline = TimelineRecorder(window: options.timelineSteps, firstStep: progress.step + 1)
        }
        try collectively(communicator) {
            guard isRoot else { return }
            if resuming {
                try EventFileWriter.truncate(filesIn: files.path, resumingAt: progress.step, restartTags: [Self.configTag])
            }
            let events = try EventFileWriter(directory: files.path)
            try events.write(step: progress.step, [.text(tag: Self.configTag, "```yaml\n" + configText + "```\n")])
            self.events = events
        }
        return timeline
    }

    /// After each step (`position` already advanced past it): every `logging.every_steps` steps rank 0 writes
    /// `train/loss` (mean over the interval), `train/lr` and `train/samples_per_second`, and every
    /// `logging.histogram_every_steps` steps the weight and gradient histograms of every layer (the global gradient
    /// is at `gradients`: the reduction's, which is not `network.gradients` when a node's ranks share memory).
    public func stepFinished(_ position: TrainingProgress, lossSum: Double, samples: Int,
                             gradients: UnsafeMutablePointer<Float>) throws {
        guard let events else { return }
        intervalLossSum += lossSum
        intervalSamples += samples
        let logging = options, step = position.step
        var values: [SummaryValue] = []
        if step % logging.everySteps == 0 {
            let seconds = position.trainingSeconds - intervalStart.trainingSeconds
            let trained = Double(position.trainedSamples - intervalStart.trainedSamples)
            values = [
                .scalar(tag: MetricName.tag("train_loss"), value: Float(intervalLossSum / Double(max(1, intervalSamples)))),
                .scalar(tag: MetricName.tag("lr"), value: learningRate(step - 1)),
                .scalar(tag: MetricName.tag("samples_per_second"), value: Float(trained / max(seconds, 1e-9))),
            ]
            (intervalStart, intervalLossSum, intervalSamples) = (position, 0, 0)
        }
        if let every = logging.histogramEverySteps, step % every == 0 { values += histograms(gradients: gradients) }
        try events.write(step: step, values)
    }

    /// The weights, biases and their gradients of every layer, tagged `weights/layers.0.weight`, `gradients/...`.
    private func histograms(gradients: UnsafeMutablePointer<Float>) -> [SummaryValue] {
        let gradients = UnsafeMutableBufferPointer(start: gradients, count: network.parameterCount)
        return network.layers.enumerated().flatMap { index, layer -> [SummaryValue] in
            let parts = [("weight", layer.weightOffset, layer.outputWidth * layer.inputWidth), ("bias", layer.biasOffset, layer.outputWidth)]
            return [("weights", network.parameters), ("gradients", gradients)].flatMap { group, buffer in
                parts.map { name, offset, count in
                    .histogram(tag: "\(group)/layers.\(index).\(name)", Histogram(buffer[offset..<(offset + count)]))
                }
            }
        }
    }

    /// After an epoch's line was added to metrics.jsonl: rank 0 writes that line's evaluation metrics (`test/*`,
    /// `val/*`, whatever the task reports; the finite ones) at the epoch's last step, each tagged by the naming rule.
    /// train_loss, lr and samples_per_second come every logging.every_steps steps instead (see `stepFinished`).
    public func epochFinished(step: Int, evaluation: MetricValues) throws {
        guard let events else { return }
        let values = evaluation.entries.filter { $0.value.isFinite }.sorted { $0.name < $1.name }
            .map { SummaryValue.scalar(tag: MetricName.tag($0.name), value: Float($0.value)) }
        try events.write(step: step, values)
    }

    /// Runs `body` (an evaluation or a checkpoint write after step `step`) as a timeline span.
    public func span<Result>(_ kind: TimelineSpanKind, step: Int, _ body: () throws -> Result) rethrows -> Result {
        guard let timeline else { return try body() }
        let start = TimelineRecorder.now()
        defer { timeline.record(kind, step: step, start: start, end: TimelineRecorder.now()) }
        return try body()
    }

    /// Ends the run's records (every rank calls it): gathers the timeline to rank 0, which writes `timeline.json`,
    /// closes the event file and draws `curves.svg` from metrics.jsonl.
    public func finish() throws {
        if let timeline, let alignment,
           let ranks = try TimelineTrace.gather(timeline.recorded, alignment: alignment, communicator: communicator) {
            try FileIO.writeAtomically(TimelineTrace.json(ranks, dropped: timeline.dropped, pace: pace?.figures), to: files[.timeline])
        }
        guard isRoot else { return }
        events = nil
        let curves = try RunCurves.read(files, allowingNoEpochs: true)
        if !curves.epochs.isEmpty {
            try FileIO.writeAtomically(CurvePlot.svg(runs: [curves], metrics: curves.defaultMetrics), to: files[.curves])
        }
    }
}

/// How far a run has trained: the step and the samples and seconds of training so far (rates are taken between two).
public struct TrainingProgress: Equatable, Sendable {
    var step = 0
    var trainedSamples = 0
    var trainingSeconds = 0.0

    /// Progress at `step` after `trainedSamples` samples in `trainingSeconds` of training.
    public init(step: Int = 0, trainedSamples: Int = 0, trainingSeconds: Double = 0) {
        (self.step, self.trainedSamples, self.trainingSeconds) = (step, trainedSamples, trainingSeconds)
    }
}

/// What a run records about itself besides metrics: `logging:`.
public struct LoggingOptions: Equatable, Sendable {
    /// Steps between live progress updates on a terminal (and TensorBoard's `train/*` scalars).
    public var everySteps: Int
    /// Write RUN_DIR/timeline.json, a per-rank trace of the steps in `timelineSteps`.
    public var timeline: Bool
    /// The steps (1-based, inclusive) the timeline records.
    public var timelineSteps: ClosedRange<Int>
    /// Steps between weight and gradient histograms in the TensorBoard event file (nil: none).
    public var histogramEverySteps: Int?

    /// Options as a config resolves them.
    public init(everySteps: Int, timeline: Bool, timelineSteps: ClosedRange<Int>, histogramEverySteps: Int?) {
        (self.everySteps, self.timeline, self.timelineSteps) = (everySteps, timeline, timelineSteps)
        self.histogramEverySteps = histogramEverySteps
    }
}
