import Distributed
import Foundation
import NeuralNet

/// What a run shows about itself besides metrics.jsonl and checkpoints, owned by one object the Trainer calls:
/// the TensorBoard event file (rank 0), the per-rank timeline (`logging.timeline`) and, at the end, `curves.svg`.
///
/// Every rank makes the same calls. Only `start` (clock alignment) and `finish` (gathering the timeline) communicate,
/// and only with the timeline on; the step observer it hands out never does.
final class RunRecorder {
    let setup: TrainingSetup
    let runDirectory: String
    private var events: EventFileWriter?
    private var timeline: TimelineRecorder?
    private var alignment: ClockAlignment?
    /// Where the current interval of TensorBoard's `train/*` scalars started, and its loss so far.
    private var intervalStart = TrainingPosition()
    private var intervalLossSum = 0.0
    private var intervalSamples = 0

    /// The tag of the resolved config, written when a run (or a resumed run) starts.
    static let configTag = "config"

    init(setup: TrainingSetup, runDirectory: String) {
        self.setup = setup
        self.runDirectory = runDirectory
    }

    private var isRoot: Bool { setup.communicator.rank == 0 }

    /// Opens the event file (rank 0; on resume after cutting what the earlier files hold past the checkpoint) and,
    /// with the timeline on, aligns the ranks' clocks. Returns the observer for the training step (nil when off).
    func start() throws -> StepObserver? {
        let config = setup.config, position = setup.position
        intervalStart = position
        if config.logging.timeline {
            alignment = try ClockAlignment.measure(setup.communicator)
            timeline = TimelineRecorder(window: config.logging.timelineSteps, firstStep: position.step + 1)
        }
        try collectively(setup.communicator) {
            guard isRoot else { return }
            if setup.resumedFrom != nil {
                try EventFileWriter.truncate(filesIn: runDirectory, resumingAt: position.step, restartTags: [Self.configTag])
            }
            let events = try EventFileWriter(directory: runDirectory)
            try events.write(step: position.step, [.text(tag: Self.configTag, "```yaml\n" + config.yaml + "```\n")])
            self.events = events
        }
        return timeline
    }

    /// After each step (`position` already advanced past it): every `logging.every_steps` steps rank 0 writes
    /// `train/loss` (mean over the interval), `train/lr` and `train/samples_per_second`, and every
    /// `logging.histogram_every_steps` steps the weight and gradient histograms of every layer.
    func stepFinished(position: TrainingPosition, lossSum: Double, samples: Int) throws {
        guard let events else { return }
        intervalLossSum += lossSum
        intervalSamples += samples
        let logging = setup.config.logging, step = position.step
        var values: [SummaryValue] = []
        if step % logging.everySteps == 0 {
            let seconds = position.trainingSeconds - intervalStart.trainingSeconds
            let trained = Double(position.trainedSamples - intervalStart.trainedSamples)
            values = [
                .scalar(tag: MetricName.tag("train_loss"), value: Float(intervalLossSum / Double(max(1, intervalSamples)))),
                .scalar(tag: MetricName.tag("lr"), value: setup.schedule.rate(atStep: step - 1)),
                .scalar(tag: MetricName.tag("samples_per_second"), value: Float(trained / max(seconds, 1e-9))),
            ]
            (intervalStart, intervalLossSum, intervalSamples) = (position, 0, 0)
        }
        if let every = logging.histogramEverySteps, step % every == 0 { values += histograms() }
        try events.write(step: step, values)
    }

    /// The weights, biases and their gradients of every layer, tagged `weights/layers.0.weight`, `gradients/...`.
    private func histograms() -> [SummaryValue] {
        let network = setup.network
        return network.layers.enumerated().flatMap { index, layer -> [SummaryValue] in
            let parts = [("weight", layer.weightOffset, layer.outputWidth * layer.inputWidth), ("bias", layer.biasOffset, layer.outputWidth)]
            return [("weights", network.parameters), ("gradients", network.gradients)].flatMap { group, buffer in
                parts.map { name, offset, count in
                    .histogram(tag: "\(group)/layers.\(index).\(name)", Histogram(buffer[offset..<(offset + count)]))
                }
            }
        }
    }

    /// After an epoch's line was added to metrics.jsonl: rank 0 writes that line's evaluation metrics (`test/*`,
    /// `val/*`, whatever the task reports) at the epoch's last step, each tagged by the naming rule.
    func epochFinished(_ record: EpochRecord) throws {
        guard let events else { return }
        let numbers = RunCurves.numbers(inLine: JSON.text(record)) ?? [:]
        // train_loss, lr and samples_per_second come every logging.every_steps steps instead (see stepFinished).
        let values = numbers.keys.sorted().filter { !MetricName.runKeys.contains($0) && $0 != "train_loss" }
            .map { SummaryValue.scalar(tag: MetricName.tag($0), value: Float(numbers[$0]!)) }
        try events.write(step: record.step, values)
    }

    /// Runs `body` (an evaluation or a checkpoint write after step `step`) as a timeline span.
    func span<Result>(_ kind: TimelineSpanKind, step: Int, _ body: () throws -> Result) rethrows -> Result {
        guard let timeline else { return try body() }
        let start = TimelineRecorder.now()
        defer { timeline.record(kind, step: step, start: start, end: TimelineRecorder.now()) }
        return try body()
    }

    /// Ends the run's records (every rank calls it): gathers the timeline to rank 0, which writes `timeline.json`,
    /// closes the event file and draws `curves.svg` from metrics.jsonl.
    func finish() throws {
        if let timeline, let alignment,
           let ranks = try TimelineTrace.gather(timeline.recorded, alignment: alignment, communicator: setup.communicator) {
            try FileIO.writeAtomically(TimelineTrace.json(ranks, dropped: timeline.dropped), to: path("timeline.json"))
        }
        guard isRoot else { return }
        events = nil
        let curves = try RunCurves.read(runDirectory: runDirectory, allowingNoEpochs: true)
        if !curves.epochs.isEmpty {
            try FileIO.writeAtomically(CurvePlot.svg(runs: [curves], metrics: curves.defaultMetrics), to: path("curves.svg"))
        }
    }

    private func path(_ name: String) -> String { (runDirectory as NSString).appendingPathComponent(name) }
}
