import Distributed

extension TrainingConfig {
    /// How ranks work together: `distributed:`.
    public struct DistributedSection: Equatable {
        /// Seconds any collective of training may wait for every rank before the job stops as stalled (a warning
        /// naming the ranks not yet arrived comes at half of it).
        public var timeoutSeconds: Double
        /// The same during start-up (config, data, checkpoint), where ranks may start far apart.
        public var startUpTimeoutSeconds: Double
    }
}

extension TrainingConfig.DistributedSection: ConfigSection {
    static let keys: [ConfigKey<Self>] = [
        .number("timeout_seconds", \.timeoutSeconds, range: .atLeast(1), default: CollectiveTimeout.trainingDefault),
        .number("startup_timeout_seconds", \.startUpTimeoutSeconds, range: .atLeast(1), default: CollectiveTimeout.startUpDefault),
    ]
    static let unread = Self(timeoutSeconds: 1, startUpTimeoutSeconds: 1)
}
