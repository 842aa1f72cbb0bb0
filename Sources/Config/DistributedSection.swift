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
        .value("shared_memory", \.sharedMemory, default: true),
        .number("bucket_mb", \.bucketMegabytes, range: .atLeast(0), default: 25),
        .value("gradient_compression", \.gradientCompression, default: .none),
        .integer("powersgd_rank", \.powerSGDApproximationRank, default: 4, minimum: 1),
        .number("timeout_seconds", \.timeoutSeconds, range: .atLeast(1), default: CollectiveTimeout.trainingDefault),
        .number("startup_timeout_seconds", \.startUpTimeoutSeconds, range: .atLeast(1), default: CollectiveTimeout.startUpDefault),
    ]
    static let unread = Self(sharedMemory: true, bucketMegabytes: 0, gradientCompression: .none, powerSGDApproximationRank: 1,
                             timeoutSeconds: 1, startUpTimeoutSeconds: 1)
}

extension GradientCompression: ConfigChoice {}
