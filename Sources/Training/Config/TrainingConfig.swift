import Foundation
import NeuralNet

/// Everything a run needs, decoded strictly from YAML with defaults filled in.
public struct TrainingConfig: Equatable {
    /// Where the samples come from and how they are scaled.
    public struct DataSection: Equatable {
        public enum Format: String, CaseIterable { case idx, csv }
        public var format: Format
        /// IDX prefix (`.../train`) or CSV path.
        public var train: String
        public var test: String?
        public var normalize: Normalization
        public var trainLimit: Int?
    }

    /// One dense layer: its width and activation.
    public struct LayerSection: Equatable {
        public var units: Int
        public var activation: Activation
    }

    /// Bias initialisation: zeros or one constant.
    public enum BiasInitialization: Equatable {
        case zeros
        case constant(Float)
    }

    public struct ModelSection: Equatable {
        public var layers: [LayerSection]
        public var weightInitialization: WeightInitialization
        public var biasInitialization: BiasInitialization
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
        public var clipGradientNorm: Double?
        /// Batch size for evaluating the test set (per rank).
        public var evaluationBatchSize: Int
        /// Bit-identical results on any ranks × threads layout (fixed sample groups, fixed-point gradient sums).
        public var deterministic: Bool
        /// Samples per fixed group in deterministic mode (the unit of work a rank is given).
        public var deterministicGroup: Int
    }

    /// When rank 0 saves a resumable checkpoint under RUN_DIR/checkpoints/.
    public struct CheckpointSection: Equatable {
        public var everySteps: Int?
        public var everyEpochs: Int?
        /// How many of the newest checkpoints to keep.
        public var keep: Int
    }

    public struct LoggingSection: Equatable {
        /// Steps between live progress updates on a terminal.
        public var everySteps: Int
    }

    public var seed: UInt64
    public var data: DataSection
    public var model: ModelSection
    public var loss: Loss
    public var optimizer: OptimizerSettings
    public var schedule: ScheduleSection
    public var training: TrainingSection
    public var checkpoint: CheckpointSection
    public var logging: LoggingSection
}

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
        let root = try ConfigReader.Section(reader: reader, path: "", tree: tree)
        let seed = try root.integer("seed", minimum: 0) ?? 0

        let dataSection = try root.section("data")
        guard let train = try dataSection.string("train") else {
            throw UserError("\(reader.location(dataSection.tree, "data.train")): required (IDX prefix or CSV file)")
        }
        let format = try dataSection.choice("format", DataSection.Format.self)
            ?? (train.lowercased().hasSuffix(".csv") ? .csv : .idx)
        let data = DataSection(
            format: format, train: train, test: try dataSection.string("test"),
            normalize: try dataSection.choice("normalize", Normalization.self) ?? (format == .idx ? .scale : .none),
            trainLimit: try dataSection.integer("train_limit", minimum: 1))
        try dataSection.finish()

        let modelSection = try root.section("model")
        guard let layerTrees = try modelSection.sequence("layers"), !layerTrees.isEmpty else {
            throw UserError("\(reader.location(modelSection.tree, "model.layers")): required, a list of {units, activation}")
        }
        var layers: [LayerSection] = []
        for (index, layerTree) in layerTrees.enumerated() {
            let layer = try ConfigReader.Section(reader: reader, path: "model.layers[\(index)]", tree: layerTree)
            guard let units = try layer.integer("units", minimum: 1) else {
                throw UserError("\(reader.location(layerTree, "model.layers[\(index)].units")): required")
            }
            layers.append(LayerSection(units: units, activation: try layer.choice("activation", Activation.self) ?? .identity))
            try layer.finish()
        }
        let initSection = try modelSection.section("init")
        let weightInitialization = try initSection.choice("weights", WeightInitialization.self) ?? .heUniform
        var biasInitialization = BiasInitialization.zeros
        if let (text, biasTree) = try initSection.scalar("biases", expected: "zeros or a number"), text != "zeros" {
            guard let value = Float(text), value.isFinite else {
                throw UserError("\(reader.location(biasTree, "model.init.biases")): expected zeros or a number, got \(quotedForMessage(text))")
            }
            biasInitialization = .constant(value)
        }
        try initSection.finish()
        let model = ModelSection(layers: layers, weightInitialization: weightInitialization,
                                 biasInitialization: biasInitialization, initFrom: try modelSection.string("init_from"))
        try modelSection.finish()

        let loss = try root.choice("loss", Loss.self) ?? .crossEntropy

        let optimizerSection = try root.section("optimizer")
        let kind = try optimizerSection.choice("name", OptimizerSettings.Kind.self) ?? .adam
        let defaults = OptimizerSettings(kind: kind, learningRate: 1e-3)
        let optimizer = OptimizerSettings(
            kind: kind,
            learningRate: Float(try optimizerSection.number("lr", exclusiveMinimum: 0) ?? (kind == .sgd ? 0.01 : 1e-3)),
            momentum: Float(try optimizerSection.number("momentum", minimum: 0, exclusiveMaximum: 1) ?? 0),
            nesterov: try optimizerSection.boolean("nesterov") ?? false,
            beta1: Float(try optimizerSection.number("beta1", minimum: 0, exclusiveMaximum: 1) ?? 0.9),
            beta2: Float(try optimizerSection.number("beta2", minimum: 0, exclusiveMaximum: 1) ?? 0.999),
            epsilon: Float(try optimizerSection.number("eps", exclusiveMinimum: 0) ?? 1e-8),
            weightDecay: Float(try optimizerSection.number("weight_decay", minimum: 0) ?? Double(defaults.weightDecay)))
        if optimizer.nesterov && (kind != .sgd || optimizer.momentum == 0) {
            throw UserError("\(reader.location(optimizerSection.tree, "optimizer.nesterov")): needs optimizer.name sgd with momentum > 0")
        }
        if kind != .sgd && optimizer.momentum != 0 {
            throw UserError("\(reader.location(optimizerSection.tree, "optimizer.momentum")): only for sgd (adam uses beta1)")
        }
        try optimizerSection.finish()

        let scheduleSection = try root.section("schedule")
        let schedule = ScheduleSection(
            kind: try scheduleSection.choice("name", LearningRateSchedule.Kind.self) ?? .constant,
            warmupSteps: try scheduleSection.integer("warmup_steps", minimum: 0) ?? 0,
            stepSize: try scheduleSection.integer("step_size", minimum: 1) ?? 1000,
            gamma: try scheduleSection.number("gamma", exclusiveMinimum: 0) ?? 0.1,
            minimumRate: try scheduleSection.number("min_lr", minimum: 0) ?? 0)
        try scheduleSection.finish()

        let trainingSection = try root.section("training")
        var threads = ThreadCount.auto
        if let (text, threadTree) = try trainingSection.scalar("threads", expected: "auto or a positive integer"), text != "auto" {
            guard let count = Int(text), count >= 1 else {
                throw UserError("\(reader.location(threadTree, "training.threads")): expected auto or a positive integer, got \(quotedForMessage(text))")
            }
            threads = .fixed(count)
        }
        let training = TrainingSection(
            epochs: try trainingSection.integer("epochs", minimum: 1) ?? 10,
            batchSize: try trainingSection.integer("batch_size", minimum: 1) ?? 128,
            shuffle: try trainingSection.boolean("shuffle") ?? true,
            threads: threads,
            clipGradientNorm: try trainingSection.number("clip_grad_norm", exclusiveMinimum: 0),
            evaluationBatchSize: try trainingSection.integer("eval_batch_size", minimum: 1) ?? 1000,
            deterministic: try trainingSection.boolean("deterministic") ?? false,
            deterministicGroup: try trainingSection.integer("deterministic_group", minimum: 1) ?? 32)
        if training.deterministic && (training.batchSize + training.deterministicGroup - 1) / training.deterministicGroup > 4096 {
            throw UserError("\(reader.location(trainingSection.tree, "training.deterministic_group")): at most 4096 groups per batch "
                + "(the fixed-point headroom); raise deterministic_group")
        }
        try trainingSection.finish()

        let checkpointSection = try root.section("checkpoint")
        let checkpoint = CheckpointSection(
            everySteps: try checkpointSection.integer("every_steps", minimum: 1),
            everyEpochs: try checkpointSection.integer("every_epochs", minimum: 1) ?? 1,
            keep: try checkpointSection.integer("keep", minimum: 1) ?? 3)
        try checkpointSection.finish()

        let loggingSection = try root.section("logging")
        let logging = LoggingSection(everySteps: try loggingSection.integer("every_steps", minimum: 1) ?? 20)
        try loggingSection.finish()

        try root.finish()
        return TrainingConfig(seed: UInt64(seed), data: data, model: model, loss: loss, optimizer: optimizer,
                              schedule: schedule, training: training, checkpoint: checkpoint, logging: logging)
    }

    /// The resolved config as YAML (every default spelled out); re-parsing it gives the same config.
    public var yaml: String {
        func number(_ value: Double) -> String { "\(value)" }
        var lines: [String] = []
        lines.append("seed: \(seed)")
        lines.append("data:")
        lines.append("  format: \(data.format.rawValue)")
        lines.append("  train: \(quotedString(data.train))")
        lines.append("  test: \(data.test.map(quotedString) ?? "null")")
        lines.append("  normalize: \(data.normalize.rawValue)")
        lines.append("  train_limit: \(data.trainLimit.map(String.init) ?? "null")")
        lines.append("model:")
        lines.append("  layers:")
        for layer in model.layers {
            lines.append("    - {units: \(layer.units), activation: \(layer.activation.rawValue)}")
        }
        lines.append("  init:")
        lines.append("    weights: \(model.weightInitialization.rawValue)")
        switch model.biasInitialization {
        case .zeros: lines.append("    biases: zeros")
        case let .constant(value): lines.append("    biases: \(value)")
        }
        lines.append("  init_from: \(model.initFrom.map(quotedString) ?? "null")")
        lines.append("loss: \(loss.rawValue)")
        lines.append("optimizer:")
        lines.append("  name: \(optimizer.kind.rawValue)")
        lines.append("  lr: \(optimizer.learningRate)")
        if optimizer.kind == .sgd {
            lines.append("  momentum: \(optimizer.momentum)")
            lines.append("  nesterov: \(optimizer.nesterov)")
        } else {
            lines.append("  beta1: \(optimizer.beta1)")
            lines.append("  beta2: \(optimizer.beta2)")
            lines.append("  eps: \(optimizer.epsilon)")
        }
        lines.append("  weight_decay: \(optimizer.weightDecay)")
        lines.append("schedule:")
        lines.append("  name: \(schedule.kind.rawValue)")
        lines.append("  warmup_steps: \(schedule.warmupSteps)")
        lines.append("  step_size: \(schedule.stepSize)")
        lines.append("  gamma: \(number(schedule.gamma))")
        lines.append("  min_lr: \(number(schedule.minimumRate))")
        lines.append("training:")
        lines.append("  epochs: \(training.epochs)")
        lines.append("  batch_size: \(training.batchSize)")
        lines.append("  shuffle: \(training.shuffle)")
        switch training.threads {
        case .auto: lines.append("  threads: auto")
        case let .fixed(count): lines.append("  threads: \(count)")
        }
        lines.append("  clip_grad_norm: \(training.clipGradientNorm.map(number) ?? "null")")
        lines.append("  eval_batch_size: \(training.evaluationBatchSize)")
        lines.append("  deterministic: \(training.deterministic)")
        lines.append("  deterministic_group: \(training.deterministicGroup)")
        lines.append("checkpoint:")
        lines.append("  every_steps: \(checkpoint.everySteps.map(String.init) ?? "null")")
        lines.append("  every_epochs: \(checkpoint.everyEpochs.map(String.init) ?? "null")")
        lines.append("  keep: \(checkpoint.keep)")
        lines.append("logging:")
        lines.append("  every_steps: \(logging.everySteps)")
        return lines.joined(separator: "\n") + "\n"
    }
}
