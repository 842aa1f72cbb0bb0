import DataParallel
import Distributed
import Support

extension TrainingConfig {
    /// How ranks work together: `distributed:`.
    public struct DistributedSection: Equatable {
        /// Ranks on one node reduce through shared memory and each steps its slice of the parameters.
        var sharedMemory: Bool
        /// Between nodes, gradients go out in buckets of about this many MiB as back-propagation finishes them.
        var bucketMegabytes: Double
        /// What goes over the links between nodes: float gradients, bf16 ones or PowerSGD's factors.
        var gradientCompression: GradientCompression
        /// Rank r of PowerSGD's factors (not a process rank).
        var powerSGDApproximationRank: Int
        /// Seconds any collective of training may wait for every rank before the job stops as stalled (a warning
        /// naming the ranks not yet arrived comes at half of it).
        var timeoutSeconds: Double
        /// The same during start-up (config, data, checkpoint), where ranks may start far apart.
        public var startUpTimeoutSeconds: Double
        /// Nodes synchronize every this many steps (1: every step's gradients).
        public var syncEvery: Int
        /// Synchronous steps before the periodic ones.
        var syncWarmupSteps: Int
        /// DiLoCo's outer optimizer over the nodes' mean change; nil: the nodes average their parameters.
        var outerOptimizer: OuterOptimizerOptions?
        /// A round's sum between nodes runs during the next round's local steps.
        var syncOverlap: Bool
        /// Each rank's share of every global batch follows its measured speed.
        public var balance: Bool

        /// The bucket size in bytes.
        var bucketBytes: Int { Int(bucketMegabytes * 1_048_576) }
    }
}

extension TrainingConfig.DistributedSection: ConfigSection {
    static let keys: [ConfigKey<Self>] = [
        .value("shared_memory", \.sharedMemory, default: true,
               description: "Ranks on one node sum their gradients through shared memory and each steps a slice of the "
                   + "parameters; `false`: every rank acts as a node of its own."),
        .number("bucket_mb", \.bucketMegabytes, range: .atLeast(0), default: 25,
                description: "Between nodes, layers' gradients (last layer first) go out together once a bucket holds this "
                    + "many MiB, while back-propagation goes on; `0`: each layer alone."),
        .value("gradient_compression", \.gradientCompression, default: .none,
               description: "Between nodes: `none`; `bf16` sends bfloat16 (half the bytes); `powersgd` sends low-rank "
                   + "factors with error feedback. Lossy, so not with `training.deterministic`."),
        .integer("powersgd_rank", \.powerSGDApproximationRank, default: 4, minimum: 1,
                 description: "The rank of PowerSGD's factors; small weight matrices and all biases go uncompressed."),
        .number("timeout_seconds", \.timeoutSeconds, range: .atLeast(1), default: CollectiveTimeout.trainingDefault,
                description: "A collective of training that waits this long for a rank ends the job as stalled, with a "
                    + "warning naming the missing ranks at half of it."),
        .number("startup_timeout_seconds", \.startUpTimeoutSeconds, range: .atLeast(1), default: CollectiveTimeout.startUpDefault,
                description: "The same until the first step (config, data, checkpoint), where ranks may start far apart."),
        .integer("sync_every", \.syncEvery, default: 1, minimum: 1,
                 description: "`1`: every step reduces the gradients over all ranks. `H` > 1: each node takes H optimizer "
                     + "steps on its share of each global batch (its ranks still reduce every step through shared memory), "
                     + "then the nodes average their parameters (post-local SGD), or their change through "
                     + "`outer_optimizer`; every epoch end, checkpoint and stop synchronizes too. Ignored on one node; not "
                     + "with `training.deterministic` or `gradient_compression`."),
        .integer("sync_warmup_steps", \.syncWarmupSteps, default: 0, minimum: 0,
                 description: "Steps that reduce every step before the periodic synchronization starts."),
        .optionalSection("outer_optimizer", \.outerOptimizer,
                         description: "With `sync_every` > 1, DiLoCo's outer optimizer: each round's mean parameter change "
                             + "is a gradient for Nesterov momentum SGD, e.g. `{name: nesterov, lr: 0.7, momentum: 0.9}`; "
                             + "none: the nodes average their parameters."),
        .value("sync_overlap", \.syncOverlap, default: true,
               description: "With `sync_every` > 1: a round's sum between nodes runs while local steps go on, and "
                   + "lands a round later (the average) or a quarter round later (`outer_optimizer`, whose change goes "
                   + "out in bfloat16) as the new common parameters plus the local progress made meanwhile. Every epoch "
                   + "end, checkpoint and stop completes it and synchronizes blocking. `false`: each round waits for "
                   + "its sum, in float."),
        .value("balance", \.balance, default: false,
               description: "Each rank's share of every global batch follows its measured speed (rows per second of "
                   + "compute), set 50 steps after a start or resume and measured again every 100 steps, so a slower rank "
                   + "(a CPU quota, an older host) gets fewer rows. With `training.deterministic` shares move in whole "
                   + "`deterministic_group`s and the bits are those of even shares; otherwise they may differ. Not with "
                   + "`sync_every` > 1."),
    ]
    static let unread = Self(sharedMemory: true, bucketMegabytes: 0, gradientCompression: .none, powerSGDApproximationRank: 1,
                             timeoutSeconds: 1, startUpTimeoutSeconds: 1, syncEvery: 1, syncWarmupSteps: 0, outerOptimizer: nil,
                             syncOverlap: true, balance: false)

    func validate(_ section: ConfigReader.Section) throws {
        if outerOptimizer != nil && syncEvery == 1 {
            throw UserError("\(section.location(section.tree, "outer_optimizer")): needs distributed.sync_every > 1")
        }
        if balance && syncEvery > 1 {
            throw UserError("\(section.location(section.tree, "balance")): balanced shares need every step's reduction; "
                + "use distributed.sync_every 1 with balance true")
        }
        if syncEvery > 1 && gradientCompression != .none {
            throw UserError("\(section.location(section.tree, "sync_every")): periodic synchronization sends parameters, "
                + "not gradients; use gradient_compression none with sync_every \(syncEvery)")
        }
    }
}

extension OuterOptimizerOptions: ConfigSection {
    static let keys: [ConfigKey<Self>] = [
        .value("name", \.kind, default: .nesterov, description: "`nesterov`: SGD with Nesterov momentum (PyTorch's rule)."),
        .number("lr", \.learningRate, range: .above(0), default: 0.7, description: "The outer learning rate."),
        .number("momentum", \.momentum, range: .unitInterval, default: 0.9, description: "The outer momentum."),
    ]
    static let unread = OuterOptimizerOptions()
}

extension GradientCompression: ConfigChoice {}
extension OuterOptimizerOptions.Kind: ConfigChoice {}
