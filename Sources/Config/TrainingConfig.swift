/// Config: the YAML config: one declaration per key, its checks, the resolved config.yaml and the key reference.

import DataParallel
import Datasets
import Foundation
import Kernels
import NeuralNet
import Observe
import Support
import Tables

/// Everything a run needs, decoded strictly from YAML with defaults filled in.
///
/// Each section declares its keys once, in its `keys` table (name, type, default, check, resolved YAML line).
public struct TrainingConfig: Equatable {
    public var seed: UInt64
    public var data: DataSection
    public var model: ModelSection
    public var loss: LossOptions
    public var optimizer: OptimizerOptions
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
        /// Rows per block of `training.shuffle: blocks`.
        var shuffleBlockRows: Int
        /// Blocks per window whose rows `training.shuffle: blocks` permutes together.
        var shuffleWindowBlocks: Int
        /// Batches a background reader prepares ahead of the step, for data read from files as it trains.
        var prefetchBatches: Int
        /// How a table's columns become features (`data.categorical`, `data.missing`, ...).
        public var rules = ColumnRules()
        /// Quantiles per feature of `normalize: quantile`.
        var quantileCount = 1000
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
        public var shuffle: Shuffle
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
        /// What the dense layers' matrix products read: fp32, or bf16 copies with fp32 sums (needs AVX512_BF16).
        public var precision: MatrixPrecision
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
        .value("seed", \.seed, default: 0,
               description: "Seeds the initial weights, the shuffle, the validation split and the dropout masks (the same "
                   + "on every rank and platform)."),
        .section("data", \.data, description: "Where the samples come from and how they are scaled."),
        .section("model", \.model, description: "The network: its dense layers and how their parameters start."),
        .sectionOrName("loss", \.loss,
                       description: "What training minimizes: a name (`loss: mse`), or a mapping with options "
                           + "(`loss: {name: huber, delta: 1.0}`)."),
        .section("optimizer", \.optimizer, description: "The update rule, with PyTorch's names, semantics and defaults."),
        .section("schedule", \.schedule, description: "How the learning rate changes from step to step."),
        .section("training", \.training, description: "Epochs, the batch, threads, determinism and early stopping."),
        .section("checkpoint", \.checkpoint,
                 description: "When rank 0 saves a resumable checkpoint under `RUN_DIR/checkpoints/` (`plexus train --resume`)."),
        .section("logging", \.logging, description: "Progress lines, TensorBoard scalars and histograms, the timeline."),
        .section("distributed", \.distributed,
                 description: "How ranks combine their gradients, and how long they wait for each other."),
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
        if training.deterministic && distributed.syncEvery > 1 {
            throw UserError("\(section.location(section.value("distributed"), "distributed.sync_every")): the nodes' local steps "
                + "make the result depend on the number of nodes, and training.deterministic promises the same bits on every "
                + "layout; use sync_every 1 or deterministic false")
        }
        if distributed.syncEvery > 1 && (data.rules.sampleWeight != nil || loss.classWeights != nil) {
            // A weighted step divides by the global batch's total weight; a node's local steps would need its own.
            throw UserError("\(section.location(section.value("distributed"), "distributed.sync_every")): row weights "
                + "(data.sample_weight, loss.class_weights) are not supported with periodic synchronization yet; use "
                + "sync_every 1")
        }
    }
}

extension TrainingConfig.DataSection: ConfigSection {
    static let keys: [ConfigKey<Self>] = [
        .custom("train", type: "string, list or map", default: KeyDocumentation.required, read: { data, section in
            guard let train = try DataLocation.read("train", from: section) else {
                throw section.missing("train", " (IDX prefix, CSV, npz, HDF5 or Parquet file, or {x: X.npy, y: Y.npy})")
            }
            data.train = train
        }, write: { .scalar($0.train.yamlText) },
        description: "The training data: an IDX prefix (`path/train` reads `train-images-idx3-ubyte` and "
            + "`train-labels-idx1-ubyte`, optionally `.gz`), a CSV, `.npz`, Parquet or HDF5 file, `{x: X.npy, y: Y.npy}`, "
            + "`{file: F.h5, x: NAME, y: NAME}`, or a list or glob of shards."),
        .optional("test", \.test,
                  description: "Test data in the same form as `data.train`, evaluated after every epoch (its metrics are "
                      + "`test_*`), and the default data of `plexus evaluate`."),
        .value("format", \.format, default: { DataFormat(impliedBy: $0.train) },
               defaultText: "by the extension of `data.train` (`.csv`, `.npz`, `.parquet`, `.h5`), `npy` for an `{x:, y:}` pair, else `idx`",
               description: "How `data.train`, `data.test` and `data.validation` are read."),
        .custom("targets", type: "list of strings", default: "`[\"label\"]` for CSV, else none", read: readTargets,
                write: writeTargets,
                description: "The CSV's target columns, e.g. `[speed, angle]` (every other column is a feature); for npz, "
                    + "names for `y`'s columns. Not for IDX."),
        .value("normalize", \.normalize, default: { $0.format == .idx ? .scale : .none },
               defaultText: "`scale` for IDX, else `none`",
               description: "Feature scaling: `none`; `scale` divides by 255 (pixels); `standardize` subtracts the training "
                   + "mean and divides by the training standard deviation, per feature; `quantile` maps each feature "
                   + "through its training quantiles to a standard normal (scikit-learn's `QuantileTransformer` with "
                   + "`output_distribution=\"normal\"`). One-hot inputs and gap indicators are left as they are."),
        .value("normalize_targets", \.normalizeTargets, default: .none,
               description: "`standardize`: regression targets minus the training mean, divided by the training standard "
                   + "deviation, per target; recorded in the model file and undone by `plexus predict`."),
        .integer("train_limit", \.trainLimit, minimum: 1, description: "Use only the first N training rows; none: all."),
        .optional("validation", \.validation,
                  description: "Validation data in the same form as `data.train`, evaluated after every epoch (`val_*` "
                      + "metrics, early stopping, `best.safetensors`). Not with `data.validation_fraction`."),
        .number("validation_fraction", \.validationFraction, range: NumericRange(exclusiveMinimum: 0, exclusiveMaximum: 1),
                description: "Hold out this fraction of the training rows (after `train_limit`) for validation, chosen "
                    + "from `seed` alone; `standardize` statistics come from the remaining rows."),
        .integer("shuffle_block_rows", \.shuffleBlockRows, default: 4096, minimum: 1,
                 description: "Rows per block of contiguous rows that `training.shuffle: blocks` moves as one; part of the "
                     + "order, so keep it fixed across a resume."),
        .integer("shuffle_window_blocks", \.shuffleWindowBlocks, default: 8, minimum: 1,
                 description: "Blocks per window whose rows `training.shuffle: blocks` permutes together; part of the "
                     + "order, so keep it fixed across a resume."),
        .integer("prefetch_batches", \.prefetchBatches, default: 2, minimum: 0,
                 description: "Batches a background reader prepares while the step runs, for data read from its files "
                     + "as training goes (`.npy`, uncompressed `.npz`, HDF5, numeric Parquet); 0 reads each batch in the step."),
    ] + tableKeys
    static let unread = Self(train: .path(""), test: nil, format: .idx, targets: nil, normalize: .none, normalizeTargets: .none,
                             trainLimit: nil, validation: nil, validationFraction: nil, shuffleBlockRows: 1,
                             shuffleWindowBlocks: 1, prefetchBatches: 0)

    func validate(_ section: ConfigReader.Section) throws {
        if validation != nil && validationFraction != nil {
            throw UserError("\(section.location(section.tree, "validation_fraction")): give data.validation or data.validation_fraction, not both")
        }
    }
}

extension TrainingConfig.LayerSection: ConfigSection {
    static let keys: [ConfigKey<Self>] = [
        .custom("units", type: "integer ≥ 1", default: KeyDocumentation.required, read: { layer, section in
            guard let units = try section.integer("units", minimum: 1) else { throw section.missing("units") }
            layer.units = units
        }, write: { .scalar(String($0.units)) },
        description: "The layer's width; the last layer's is the number of classes, targets or labels."),
        .value("activation", \.activation, default: .identity,
               description: "Applied to the layer's output: `leaky_relu` has slope 0.01, `gelu` is the exact erf form; "
                   + "the last layer is usually `identity` (the loss applies softmax or sigmoid)."),
        .number("dropout", \.dropout, range: .unitInterval, default: 0, writtenWhen: { $0.dropout != 0 },
                description: "Inverted dropout on the layer's output in training (PyTorch's `nn.Dropout(p)`), none in "
                    + "evaluation; its masks come from the seed, so deterministic mode and resume hold."),
    ]
    static let unread = Self(units: 0, activation: .identity, dropout: 0)
}

extension TrainingConfig.InitializationSection: ConfigSection {
    static let keys: [ConfigKey<Self>] = [
        .value("weights", \.weights, default: .heUniform, description: "How the weights are drawn (PyTorch's formulas)."),
        .custom("biases", type: "`zeros` or a number", default: "`zeros`", read: { initialization, section in
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
        }, description: "The value every bias starts at."),
    ]
    static let unread = Self(weights: .heUniform, biases: .zeros)
}

extension TrainingConfig.ModelSection: ConfigSection {
    static let keys: [ConfigKey<Self>] = [
        .list("layers", \.layers,
              description: "The dense layers, input to output, e.g. `[{units: 64, activation: relu}, {units: 10}]`; the "
                  + "input width comes from the data."),
        .section("init", \.initialization, description: "How the parameters start."),
        .optional("init_from", \.initFrom,
                  description: "A `.safetensors` file (a model or checkpoint of the same layer shapes) whose weights "
                      + "replace the initial ones."),
    ]
    static let unread = Self(layers: [], initialization: .unread, initFrom: nil)
}

extension OptimizerOptions: ConfigSection {
    // Defaults come from OptimizerOptions(kind:), so PyTorch's values are written down once, in NeuralNet.
    static let keys: [ConfigKey<Self>] = [
        .value("name", \.kind, default: .adam,
               description: "`sgd` (with optional momentum), `adam`, `adamw` (Adam with decoupled weight decay), `lars` "
                   + "(momentum SGD with a trust ratio per layer) or `lamb` (Adam's direction with a trust ratio per layer); "
                   + "lars and lamb exclude biases from weight decay and the ratio."),
        .number("lr", \.learningRate, range: .above(0), default: { OptimizerOptions(kind: $0.kind).learningRate },
                defaultText: defaultText(\.learningRate), description: "The learning rate (the peak one under a schedule)."),
        .number("momentum", \.momentum, range: .unitInterval, default: { OptimizerOptions(kind: $0.kind).momentum },
                defaultText: defaultText(\.momentum, kinds: [.sgd, .lars]), writtenWhen: { $0.kind == .sgd || $0.kind == .lars },
                description: "SGD's momentum (PyTorch's, dampening 0); LARS's momentum of the scaled update; sgd and lars only."),
        .value("nesterov", \.nesterov, default: { OptimizerOptions(kind: $0.kind).nesterov },
               defaultText: defaultText(\.nesterov, kinds: [.sgd]), writtenWhen: { $0.kind == .sgd },
               description: "Nesterov momentum; sgd with momentum > 0 only."),
        .number("beta1", \.beta1, range: .unitInterval, default: { OptimizerOptions(kind: $0.kind).beta1 },
                defaultText: defaultText(\.beta1, kinds: momentKinds), writtenWhen: { $0.kind.usesAdamMoments },
                description: "Adam's decay rate of the first moment; adam, adamw and lamb only."),
        .number("beta2", \.beta2, range: .unitInterval, default: { OptimizerOptions(kind: $0.kind).beta2 },
                defaultText: defaultText(\.beta2, kinds: momentKinds), writtenWhen: { $0.kind.usesAdamMoments },
                description: "Adam's decay rate of the second moment; adam, adamw and lamb only."),
        .number("eps", \.epsilon, range: .above(0), default: { OptimizerOptions(kind: $0.kind).epsilon },
                defaultText: defaultText(\.epsilon, kinds: momentKinds), writtenWhen: { $0.kind.usesAdamMoments },
                description: "Added to Adam's denominator; adam, adamw and lamb only."),
        .number("weight_decay", \.weightDecay, range: .atLeast(0), default: { OptimizerOptions(kind: $0.kind).weightDecay },
                defaultText: defaultText(\.weightDecay),
                description: "sgd and adam add `weight_decay × parameter` to the gradient; adamw decays the parameters "
                    + "directly (decoupled); lars adds it to the gradient and lamb to the update, of weights only."),
        .number("trust_coefficient", \.trustCoefficient, range: NumericRange(exclusiveMinimum: 0, exclusiveMaximum: 1),
                default: { OptimizerOptions(kind: $0.kind).trustCoefficient },
                defaultText: defaultText(\.trustCoefficient, kinds: [.lars]), writtenWhen: { $0.kind == .lars },
                description: "LARS's η: a layer's rate is `lr × η × ‖w‖ / (‖∇w‖ + weight_decay × ‖w‖)`; lars only."),
    ]
    /// The rules with Adam's moments (beta1, beta2, eps).
    static let momentKinds: [Kind] = [.adam, .adamw, .lamb]
    static var unread: Self { OptimizerOptions(kind: .adam) }

    /// A setting's default for each of `kinds` (`0.01` for sgd, `0.001` for adam and adamw; one value when they
    /// agree), for the reference.
    static func defaultText<Value: ConfigScalar>(_ setting: KeyPath<OptimizerOptions, Value>,
                                                 kinds: [Kind] = Kind.allCases) -> String {
        var groups: [(value: String, kinds: [String])] = []
        for kind in kinds {
            let value = KeyDocumentation.code(OptimizerOptions(kind: kind)[keyPath: setting].yamlText)
            if let index = groups.firstIndex(where: { $0.value == value }) {
                groups[index].kinds.append(kind.rawValue)
            } else {
                groups.append((value, [kind.rawValue]))
            }
        }
        if groups.count == 1 { return groups[0].value }
        return groups.map { "\($0.value) for \($0.kinds.joined(separator: " and "))" }.joined(separator: ", ")
    }

    func validate(_ section: ConfigReader.Section) throws {
        if nesterov && (kind != .sgd || momentum == 0) {
            throw UserError("\(section.location(section.tree, "nesterov")): needs optimizer.name sgd with momentum > 0")
        }
        if kind != .sgd && kind != .lars && momentum != 0 {
            throw UserError("\(section.location(section.tree, "momentum")): only for sgd and lars (\(kind.rawValue) uses beta1)")
        }
    }
}

extension TrainingConfig.ScheduleSection: ConfigSection {
    static let keys: [ConfigKey<Self>] = [
        .value("name", \.kind, default: .constant,
               description: "`constant`; `step` multiplies the rate by `gamma` every `step_size` steps; `cosine` anneals "
                   + "it to `min_lr` at the last step (all after the warmup)."),
        .integer("warmup_steps", \.warmupSteps, default: 0, minimum: 0,
                 description: "Steps of linear warmup from `lr / warmup_steps` up to `lr`."),
        .integer("step_size", \.stepSize, default: 1000, minimum: 1, description: "Steps between the decays of `step`."),
        .number("gamma", \.gamma, range: .above(0), default: 0.1, description: "The factor of each decay of `step`."),
        .number("min_lr", \.minimumRate, range: .atLeast(0), default: 0, description: "Where `cosine` ends."),
    ]
    static let unread = Self(kind: .constant, warmupSteps: 0, stepSize: 1, gamma: 0, minimumRate: 0)
}

extension TrainingConfig.TrainingSection: ConfigSection {
    /// Most fixed groups one batch may have: the fixed-point format's headroom for summing them.
    static let maximumDeterministicGroups = 4096

    static let keys: [ConfigKey<Self>] = [
        .integer("epochs", \.epochs, default: 10, minimum: 1, description: "Passes over the training data."),
        .integer("batch_size", \.batchSize, default: 128, minimum: 1,
                 description: "The global batch, split across the ranks, so the result does not depend on their number."),
        .custom("shuffle", type: "one of `rows`, `blocks`, `none` (`true` is `rows`, `false` is `none`)", default: "`rows`",
                read: { training, section in
            training.shuffle = .rows
            guard let (text, tree) = try section.scalar("shuffle", expected: "rows, blocks or none") else { return }
            guard let shuffle = ["true": .rows, "false": .none][text] ?? Shuffle(rawValue: text) else {
                throw UserError("\(section.location(tree, "shuffle")): expected rows, blocks or none, got \(quotedForMessage(text))")
            }
            training.shuffle = shuffle
        }, write: { .scalar($0.shuffle.rawValue) },
        description: "The order of the training rows every epoch, from the seed: `rows` permutes all rows; `blocks` "
            + "permutes blocks of `data.shuffle_block_rows` contiguous rows, then the rows within each window of "
            + "`data.shuffle_window_blocks` blocks (a batch reads from one part of the file); `none` keeps file order."),
        .custom("threads", type: "`auto` or an integer ≥ 1", default: "`auto`", read: { training, section in
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
        }, description: "Threads per process: `auto` uses the CPUs the process may run on (its affinity mask)."),
        .number("clip_grad_norm", \.clipGradientNorm, range: .above(0),
                description: "Clip the global gradient norm to this (after the ranks' gradients are combined); none: no clipping."),
        .integer("eval_batch_size", \.evaluationBatchSize, default: 1000, minimum: 1,
                 description: "Rows per evaluation batch, per rank."),
        .value("deterministic", \.deterministic, default: false,
               description: "Bit-identical weights on any ranks × threads layout (fixed sample groups, fixed-point "
                   + "gradient sums); refuses lossy gradient compression."),
        .integer("deterministic_group", \.deterministicGroup, default: 32, minimum: 1,
                 description: "Samples per fixed group in deterministic mode; part of the result, so keep it fixed."),
        .optionalSection("early_stopping", \.earlyStopping,
                         description: "Stop after `patience` epochs in a row without an improvement of `metric` by more "
                             + "than `min_delta`, e.g. `{metric: val_loss, patience: 3}`; needs validation data."),
        .value("precision", \.precision, default: .fp32,
               description: "What the matrix products read: `fp32`; `bf16` rounds weights and activations to bfloat16 "
                   + "for the forward and backward products (fp32 sums; needs a CPU with AVX512_BF16), while master "
                   + "weights, optimizer state, biases, loss and the gradient reduction stay fp32. With "
                   + "`deterministic`, the weight gradients' products stay fp32 (their fixed-point groups)."),
    ]
    static let unread = Self(epochs: 1, batchSize: 1, shuffle: .rows, threads: .auto, clipGradientNorm: nil,
                             evaluationBatchSize: 1, deterministic: false, deterministicGroup: 1, earlyStopping: nil,
                             precision: .fp32)

    func validate(_ section: ConfigReader.Section) throws {
        if deterministic && (batchSize + deterministicGroup - 1) / deterministicGroup > Self.maximumDeterministicGroups {
            throw UserError("\(section.location(section.tree, "deterministic_group")): at most \(Self.maximumDeterministicGroups) "
                + "groups per batch (the fixed-point headroom); raise deterministic_group")
        }
    }
}

extension MatrixPrecision: ConfigChoice {}
extension Loss: ConfigChoice {}
extension Activation: ConfigChoice {}
extension WeightInitialization: ConfigChoice {}
extension Normalization: ConfigChoice {}
extension TargetNormalization: ConfigChoice {}
extension MissingStrategy: ConfigChoice {}
extension LearningRateSchedule.Kind: ConfigChoice {}
extension OptimizerOptions.Kind: ConfigChoice {
    /// Whether the rule has Adam's moments and so reads beta1, beta2 and eps.
    var usesAdamMoments: Bool { OptimizerOptions.momentKinds.contains(self) }
}
extension DataFormat: ConfigChoice {}

