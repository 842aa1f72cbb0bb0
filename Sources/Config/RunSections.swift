import Observe
import Support

// The keys of what a run does besides training: early stopping, checkpoints and logging.

extension TrainingConfig.EarlyStoppingSection: ConfigSection {
    static let keys: [ConfigKey<Self>] = [
        .value("metric", \.metric, default: "val_loss",
               description: "A validation metric the task reports (`val_loss`, `val_accuracy`, `val_rmse`, ...); lower is "
                   + "better for losses and errors, higher for accuracies and R²."),
        .integer("patience", \.patience, default: 3, minimum: 1, description: "Epochs without an improvement before stopping."),
        .number("min_delta", \.minimumDelta, range: .atLeast(0), default: 0,
                description: "How much `metric` must improve to count as an improvement."),
    ]
    static let unread = Self(metric: "", patience: 1, minimumDelta: 0)
}

extension TrainingConfig.CheckpointSection: ConfigSection {
    static let keys: [ConfigKey<Self>] = [
        .integer("every_steps", \.everySteps, minimum: 1, description: "Save a checkpoint every N steps; none: not by steps."),
        .integer("every_epochs", \.everyEpochs, default: 1, minimum: 1,
                 description: "Save a checkpoint every N epochs and after the last one (or an early stop); none: not by epochs."),
        .number("every_seconds", \.everySeconds, range: .above(0),
                description: "Save a checkpoint once this many seconds of training passed since the last one (rank 0's "
                    + "clock); combines with the two above."),
        .integer("keep", \.keep, default: 3, minimum: 1, description: "How many of the newest checkpoints to keep."),
    ]
    static let unread = Self(everySteps: nil, everyEpochs: nil, everySeconds: nil, keep: 1)
}

extension TrainingConfig.LoggingSection: ConfigSection {
    static let keys: [ConfigKey<Self>] = [
        .integer("every_steps", \.everySteps, default: 20, minimum: 1,
                 description: "Steps between live progress updates and TensorBoard's `train/*` scalars."),
        .value("timeline", \.timeline, default: false,
               description: "Write `RUN_DIR/timeline.json`, every rank's step phases (Chrome's trace format)."),
        .custom("timeline_steps", type: "`FIRST-LAST`",
                default: KeyDocumentation.code("\(defaultTimelineSteps.lowerBound)-\(defaultTimelineSteps.upperBound)"),
                read: { logging, section in
            logging.timelineSteps = defaultTimelineSteps
            guard let (text, tree) = try section.scalar("timeline_steps", expected: "FIRST-LAST") else { return }
            logging.timelineSteps = try parseStepWindow(text, location: section.location(tree, "timeline_steps"))
        }, write: { .scalar("\($0.timelineSteps.lowerBound)-\($0.timelineSteps.upperBound)") },
        description: "The steps (counted from 1, inclusive) the timeline records, at most "
            + "\(maximumTimelineSteps)."),
        .integer("histogram_every_steps", \.histogramEverySteps, minimum: 1,
                 description: "Steps between weight and gradient histograms in the TensorBoard event file; none: no histograms."),
    ]
    static let unread = Self(everySteps: 1, timeline: false, timelineSteps: 1...1, histogramEverySteps: nil)
}
