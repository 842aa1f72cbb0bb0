import DataParallel
import Datasets
import Foundation
import NeuralNet
import Observe
import Support

/// Everything a run needs, decoded strictly from YAML with defaults filled in.
///
/// Each section declares its keys once, in its `keys` table (name, type, default, check, resolved YAML line).
public struct TrainingConfig: Equatable {
    public var seed: UInt64
    public var data: DataSection
    public var model: ModelSection
    public var loss: LossSettings
    public var optimizer: OptimizerSettings
    public var schedule: ScheduleSection
    public var training: TrainingSection
    public var checkpoint: CheckpointSection
    public var logging: LoggingSection
    public var distributed: DistributedSection

    /// Where the samples come from and how they are scaled.
    public struct DataSection: Equatable {
        /// IDX prefix (`.../train`), a CSV, npz, HDF5 or Parquet file, shards, or an `.npy` pair.
        public var train: DataLocation
        public var test: DataLocation?
        public var format: DataFormat
        /// The target columns of a CSV (default `[label]`) or names for an npz's y columns; nil for IDX and unnamed y.
        public var targets: [String]?
        var normalize: Normalization
        var normalizeTargets: TargetNormalization
        public var trainLimit: Int?
        /// Held-out rows for validation: a separate file (same format as `train`) ...
        public var validation: DataLocation?
        /// ... or this fraction of the training rows, chosen from the seed alone.
        var validationFraction: Double?
    }

    /// One dense layer: its width and activation.
    public struct LayerSection: Equatable {
        public var units: Int
        public var activation: Activation
        /// Inverted dropout on the layer's output in training, in [0, 1).
        public var dropout: Double = 0
    }

    /// Bias initialisation: zeros or one constant.
    public enum BiasInitialization: Equatable {
        case zeros
        case constant(Float)

        /// The value every bias starts at.
        public var value: Float {
            switch self {
            case .zeros: return 0
            case let .constant(value): return value
            }
        }
    }

    /// How the parameters start: `model.init`.
    public struct InitializationSection: Equatable {
        public var weights: WeightInitialization
        public var biases: BiasInitialization
    }

    public struct ModelSection: Equatable {
        public var layers: [LayerSection]
        public var initialization: InitializationSection
        /// A safetensors file whose weights replace the initial ones.
        public var initFrom: String?
    }

    public struct ScheduleSection: Equatable {
        public var kind: LearningRateSchedule.Kind
        public var warmupSteps: Int
        public var stepSize: Int
        public var gamma: Double
        public var minimumRate: Double
    }

    /// `training.threads`: the CPUs this process may use, or a fixed count.
    public enum ThreadCount: Equatable {
        case auto
        case fixed(Int)
    }

    public struct TrainingSection: Equatable {
        public var epochs: Int
        /// The GLOBAL batch, split across ranks.
        public var batchSize: Int
        public var shuffle: Bool
        public var threads: ThreadCount
        var clipGradientNorm: Double?
        /// Batch size for evaluating the test set (per rank).
        public var evaluationBatchSize: Int
        /// Bit-identical results on any ranks × threads layout (fixed sample groups, fixed-point gradient sums).
        public var deterministic: Bool
        /// Samples per fixed group in deterministic mode (the unit of work a rank is given).
        var deterministicGroup: Int
        /// Stop when a validation metric stops improving; nil: train every epoch.
        public var earlyStopping: EarlyStoppingSection?
    }

    /// `training.early_stopping`: stop after `patience` epochs in a row without an improvement of `metric`
    /// (a validation metric, `val_loss`, `val_accuracy`, ...) by more than `minimumDelta`.
    public struct EarlyStoppingSection: Equatable {
        public var metric: String
        public var patience: Int
        public var minimumDelta: Double
    }

    /// When rank 0 saves a resumable checkpoint under RUN_DIR/checkpoints/.
    public struct CheckpointSection: Equatable {
        public var everySteps: Int?
        public var everyEpochs: Int?
        /// Seconds of training between checkpoints, by rank 0's clock (all ranks agree at a step boundary).
        public var everySeconds: Double?
        /// How many of the newest checkpoints to keep.
        public var keep: Int
    }

    /// `logging:`, the options of the run recorder.
    public typealias LoggingSection = LoggingOptions

    /// The resolved config as YAML (every default spelled out); re-parsing it gives the same config.
    public var yaml: String {
        resolved.flatMap { $0.1.lines(name: $0.0, indent: 0) }.joined(separator: "\n") + "\n"
    }
}

// MARK: - Key tables

extension TrainingConfig: ConfigSection {
    static let keys: [ConfigKey<TrainingConfig>] = [
        .value("seed", \.seed, default: 0),
        .section("data", \.data),
        .section("model", \.model),
        .sectionOrName("loss", \.loss),
        .section("optimizer", \.optimizer),
        .section("schedule", \.schedule),
        .section("training", \.training),
        .section("checkpoint", \.checkpoint),
        .section("logging", \.logging),
        .section("distributed", \.distributed),
    ]
    static var unread: TrainingConfig {
        TrainingConfig(seed: 0, data: .unread, model: .unread, loss: .unread, optimizer: .unread,
                       schedule: .unread, training: .unread, checkpoint: .unread, logging: .unread, distributed: .unread)
    }

    /// Checks across sections: target normalization is for regression losses; early stopping needs validation data;
    /// deterministic training refuses lossy gradient compression.
    func validate(_ section: ConfigReader.Section) throws {
        if data.normalizeTargets != .none && loss.isClassification {
            throw UserError("\(section.location(section.value("data"), "data.normalize_targets")): only for regression "
                + "losses (mse, l1, huber); \(loss.kind.rawValue) learns classes")
        }
        if training.earlyStopping != nil && data.validation == nil && data.validationFraction == nil {
            throw UserError("\(section.location(section.nested("training", "early_stopping"), "training.early_stopping")): "
                + "needs validation data (data.validation_fraction or data.validation)")
        }
        if training.deterministic && distributed.gradientCompression != .none {
            throw UserError("\(section.location(section.tree, "distributed")): gradient_compression "
                + "\(distributed.gradientCompression.rawValue) is lossy and training.deterministic promises the same bits on "
                + "every layout; use one or the other")
        }
    }
}

extension TrainingConfig.DataSection: ConfigSection {
    static let keys: [ConfigKey<Self>] = [
        .custom("train", read: { data, section in
            guard let train = try DataLocation.read("train", from: section) else {
                throw section.missing("train", " (IDX prefix, CSV, npz, HDF5 or Parquet file, or {x: X.npy, y: Y.npy})")
            }
            data.train = train
        }, write: { .scalar($0.train.yamlText) }),
        .optional("test", \.test),
        .value("format", \.format, default: { DataFormat(impliedBy: $0.train) }),
        .custom("targets", read: readTargets, write: writeTargets),
        .value("normalize", \.normalize, default: { $0.format == .idx ? .scale : .none }),
        .value("normalize_targets", \.normalizeTargets, default: .none),
        .integer("train_limit", \.trainLimit, minimum: 1),
        .optional("validation", \.validation),
        .number("validation_fraction", \.validationFraction, range: NumericRange(exclusiveMinimum: 0, exclusiveMaximum: 1)),
    ]
    static let unread = Self(train: .path(""), test: nil, format: .idx, targets: nil, normalize: .none, normalizeTargets: .none,
                             trainLimit: nil, validation: nil, validationFraction: nil)

    func validate(_ section: ConfigReader.Section) throws {
        if validation != nil && validationFraction != nil {
            throw UserError("\(section.location(section.tree, "validation_fraction")): give data.validation or data.validation_fraction, not both")
        }
    }
}

extension TrainingConfig.LayerSection: ConfigSection {
    static let keys: [ConfigKey<Self>] = [
        .custom("units", read: { layer, section in
            guard let units = try section.integer("units", minimum: 1) else { throw section.missing("units") }
            layer.units = units
        }, write: { .scalar(String($0.units)) }),
        .value("activation", \.activation, default: .identity),
        .number("dropout", \.dropout, range: .unitInterval, default: { _ in 0 }, writtenWhen: { $0.dropout != 0 }),
    ]
    static let unread = Self(units: 0, activation: .identity, dropout: 0)
}

extension TrainingConfig.InitializationSection: ConfigSection {
    static let keys: [ConfigKey<Self>] = [
        .value("weights", \.weights, default: .heUniform),
        .custom("biases", read: { initialization, section in
            initialization.biases = .zeros
            if let (text, tree) = try section.scalar("biases", expected: "zeros or a number"), text != "zeros" {
                guard let value = Float(text), value.isFinite else {
                    throw UserError("\(section.location(tree, "biases")): expected zeros or a number, got \(quotedForMessage(text))")
                }
                initialization.biases = .constant(value)
            }
        }, write: {
            switch $0.biases {
            case .zeros: return .scalar("zeros")
            case let .constant(value): return .scalar("\(value)")
            }
        }),
    ]
    static let unread = Self(weights: .heUniform, biases: .zeros)
}

extension TrainingConfig.ModelSection: ConfigSection {
    static let keys: [ConfigKey<Self>] = [
        .custom("layers", read: { model, section in
            guard let trees = try section.sequence("layers"), !trees.isEmpty else {
                throw section.missing("layers", ", a list of {units, activation}")
            }
            model.layers = try trees.enumerated().map { index, tree in
                try TrainingConfig.LayerSection.read(try section.element("layers", index: index, tree: tree))
            }
        }, write: { .list($0.layers.map(\.inlineYAML)) }),
        .section("init", \.initialization),
        .optional("init_from", \.initFrom),
    ]
    static let unread = Self(layers: [], initialization: .unread, initFrom: nil)
}

extension OptimizerSettings: ConfigSection {
    // Defaults come from OptimizerSettings(kind:), so PyTorch's values are written down once, in NeuralNet.
    static let keys: [ConfigKey<Self>] = [
        .value("name", \.kind, default: .adam),
        .number("lr", \.learningRate, range: .above(0), default: { OptimizerSettings(kind: $0.kind).learningRate }),
        .number("momentum", \.momentum, range: .unitInterval, default: { OptimizerSettings(kind: $0.kind).momentum },
                writtenWhen: { $0.kind == .sgd }),
        .value("nesterov", \.nesterov, default: { OptimizerSettings(kind: $0.kind).nesterov }, writtenWhen: { $0.kind == .sgd }),
        .number("beta1", \.beta1, range: .unitInterval, default: { OptimizerSettings(kind: $0.kind).beta1 },
                writtenWhen: { $0.kind != .sgd }),
        .number("beta2", \.beta2, range: .unitInterval, default: { OptimizerSettings(kind: $0.kind).beta2 },
                writtenWhen: { $0.kind != .sgd }),
        .number("eps", \.epsilon, range: .above(0), default: { OptimizerSettings(kind: $0.kind).epsilon },
                writtenWhen: { $0.kind != .sgd }),
        .number("weight_decay", \.weightDecay, range: .atLeast(0), default: { OptimizerSettings(kind: $0.kind).weightDecay }),
    ]
    static var unread: Self { OptimizerSettings(kind: .adam) }

    func validate(_ section: ConfigReader.Section) throws {
        if nesterov && (kind != .sgd || momentum == 0) {
            throw UserError("\(section.location(section.tree, "nesterov")): needs optimizer.name sgd with momentum > 0")
        }
        if kind != .sgd && momentum != 0 {
            throw UserError("\(section.location(section.tree, "momentum")): only for sgd (adam uses beta1)")
        }
    }
}

extension TrainingConfig.ScheduleSection: ConfigSection {
    static let keys: [ConfigKey<Self>] = [
        .value("name", \.kind, default: .constant),
        .integer("warmup_steps", \.warmupSteps, default: 0, minimum: 0),
        .integer("step_size", \.stepSize, default: 1000, minimum: 1),
        .number("gamma", \.gamma, range: .above(0), default: 0.1),
        .number("min_lr", \.minimumRate, range: .atLeast(0), default: 0),
    ]
    static let unread = Self(kind: .constant, warmupSteps: 0, stepSize: 1, gamma: 0, minimumRate: 0)
}

extension TrainingConfig.TrainingSection: ConfigSection {
    /// Most fixed groups one batch may have: the fixed-point format's headroom for summing them.
    static let maximumDeterministicGroups = 4096

    static let keys: [ConfigKey<Self>] = [
        .integer("epochs", \.epochs, default: 10, minimum: 1),
        .integer("batch_size", \.batchSize, default: 128, minimum: 1),
        .value("shuffle", \.shuffle, default: true),
        .custom("threads", read: { training, section in
            training.threads = .auto
            if let (text, tree) = try section.scalar("threads", expected: "auto or a positive integer"), text != "auto" {
                guard let count = Int(text), count >= 1 else {
                    throw UserError("\(section.location(tree, "threads")): expected auto or a positive integer, got \(quotedForMessage(text))")
                }
                training.threads = .fixed(count)
            }
        }, write: {
            switch $0.threads {
            case .auto: return .scalar("auto")
            case let .fixed(count): return .scalar(String(count))
            }
        }),
        .number("clip_grad_norm", \.clipGradientNorm, range: .above(0)),
        .integer("eval_batch_size", \.evaluationBatchSize, default: 1000, minimum: 1),
        .value("deterministic", \.deterministic, default: false),
        .integer("deterministic_group", \.deterministicGroup, default: 32, minimum: 1),
        .optionalSection("early_stopping", \.earlyStopping),
    ]
    static let unread = Self(epochs: 1, batchSize: 1, shuffle: true, threads: .auto, clipGradientNorm: nil,
                             evaluationBatchSize: 1, deterministic: false, deterministicGroup: 1, earlyStopping: nil)

    func validate(_ section: ConfigReader.Section) throws {
        if deterministic && (batchSize + deterministicGroup - 1) / deterministicGroup > Self.maximumDeterministicGroups {
            throw UserError("\(section.location(section.tree, "deterministic_group")): at most \(Self.maximumDeterministicGroups) "
                + "groups per batch (the fixed-point headroom); raise deterministic_group")
        }
    }
}

extension TrainingConfig.EarlyStoppingSection: ConfigSection {
    static let keys: [ConfigKey<Self>] = [
        .value("metric", \.metric, default: "val_loss"),
        .integer("patience", \.patience, default: 3, minimum: 1),
        .number("min_delta", \.minimumDelta, range: .atLeast(0), default: 0),
    ]
    static let unread = Self(metric: "", patience: 1, minimumDelta: 0)
}

extension TrainingConfig.CheckpointSection: ConfigSection {
    static let keys: [ConfigKey<Self>] = [
        .integer("every_steps", \.everySteps, minimum: 1),
        .integer("every_epochs", \.everyEpochs, default: 1, minimum: 1),
        .number("every_seconds", \.everySeconds, range: .above(0)),
        .integer("keep", \.keep, default: 3, minimum: 1),
    ]
    static let unread = Self(everySteps: nil, everyEpochs: nil, everySeconds: nil, keep: 1)
}

extension TrainingConfig.LoggingSection: ConfigSection {
    static let keys: [ConfigKey<Self>] = [
        .integer("every_steps", \.everySteps, default: 20, minimum: 1),
        .value("timeline", \.timeline, default: false),
        .custom("timeline_steps", read: { logging, section in
            logging.timelineSteps = defaultTimelineSteps
            guard let (text, tree) = try section.scalar("timeline_steps", expected: "FIRST-LAST") else { return }
            logging.timelineSteps = try parseStepWindow(text, location: section.location(tree, "timeline_steps"))
        }, write: { .scalar("\($0.timelineSteps.lowerBound)-\($0.timelineSteps.upperBound)") }),
        .integer("histogram_every_steps", \.histogramEverySteps, minimum: 1),
    ]
    static let unread = Self(everySteps: 1, timeline: false, timelineSteps: 1...1, histogramEverySteps: nil)
}

extension Loss: ConfigChoice {}
extension Activation: ConfigChoice {}
extension WeightInitialization: ConfigChoice {}
extension Normalization: ConfigChoice {}
extension TargetNormalization: ConfigChoice {}
extension LearningRateSchedule.Kind: ConfigChoice {}
extension OptimizerSettings.Kind: ConfigChoice {}
extension DataFormat: ConfigChoice {}

// MARK: - Loading

extension TrainingConfig {
    /// Loads a YAML file and applies `--set key=value` overrides (values parsed as YAML).
    public static func load(path: String, overrides: [String] = []) throws -> TrainingConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            let exists = FileManager.default.fileExists(atPath: path)
            throw UserError(exists ? "\(path): cannot read file" : "\(path): no such file")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw UserError("\(path): not UTF-8 text") }
        return try parse(text, source: path, overrides: overrides)
    }

    /// Decodes YAML text; `source` names it in errors.
    public static func parse(_ text: String, source: String, overrides: [String] = []) throws -> TrainingConfig {
        var tree = try ConfigTree.parse(text, source: source)
        for override in overrides {
            guard let equals = override.firstIndex(of: "="), equals != override.startIndex else {
                throw UserError("--set \(escapedForMessage(override)): expected dotted.key=value")
            }
            let key = String(override[..<equals])
            let valueText = String(override[override.index(after: equals)...])
            let value = try ConfigTree.parse(valueText.isEmpty ? "''" : valueText, source: "--set \(key)")
            let path = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            if path.contains(where: \.isEmpty) { throw UserError("--set \(escapedForMessage(override)): empty key in \(escapedForMessage(key))") }
            tree = try tree.setting(path[...], to: value, fullPath: key)
        }
        return try decode(tree, reader: ConfigReader(source: source))
    }

    static func decode(_ tree: ConfigTree, reader: ConfigReader) throws -> TrainingConfig {
        try read(try ConfigReader.Section(reader: reader, path: "", tree: tree))
    }
}

extension TrainingConfig.LoggingSection {
    /// Most steps one timeline records (each rank keeps its spans in memory until the end of the run).
    static let maximumTimelineSteps = 100_000

    /// `logging.timeline_steps` when the config leaves it out: 200 steps after 20 of warm-up.
    static let defaultTimelineSteps = 21...220

    /// Parses `FIRST-LAST` (steps counted from 1, inclusive, at most `maximumTimelineSteps` of them).
    static func parseStepWindow(_ text: String, location: String) throws -> ClosedRange<Int> {
        let bounds = text.split(separator: "-", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard bounds.count == 2, let first = bounds[0], let last = bounds[1], first >= 1, last >= first else {
            throw UserError("\(location): expected FIRST-LAST (steps counted from 1, FIRST ≤ LAST), got \(quotedForMessage(text))")
        }
        guard last - first < maximumTimelineSteps else {
            throw UserError("\(location): at most \(maximumTimelineSteps) steps, got \(last - first + 1)")
        }
        return first...last
    }
}
