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
        var gradientCompression: GradientCompression
        /// Rank r of PowerSGD's factors (not a process rank).
        var powerSGDApproximationRank: Int
        /// Seconds any collective of training may wait for every rank before the job stops as stalled (a warning
        /// naming the ranks not yet arrived comes at half of it).
        var timeoutSeconds: Double
        /// The same during start-up (config, data, checkpoint), where ranks may start far apart.
        public var startUpTimeoutSeconds: Double

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
    ]
    static let unread = Self(sharedMemory: true, bucketMegabytes: 0, gradientCompression: .none, powerSGDApproximationRank: 1,
                             timeoutSeconds: 1, startUpTimeoutSeconds: 1)
}

extension GradientCompression: ConfigChoice {}
