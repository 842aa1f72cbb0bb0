import DataParallel
import Datasets
import Support

// The option values the libraries below take, resolved from a config: each library sees what it uses, not the config.

extension TrainingConfig {
    /// How the data is split and normalized.
    public var dataOptions: DataOptions {
        DataOptions(normalize: data.normalize, normalizeTargets: data.normalizeTargets,
                    validationFraction: data.validationFraction, seed: seed, batchSize: training.batchSize, rules: data.rules,
                    targets: data.targets ?? ["label"], classTargets: loss.isClassification, quantileCount: data.quantileCount)
    }

    /// The order of the training rows each epoch.
    public var epochOrder: EpochOrder {
        EpochOrder(shuffle: training.shuffle, blockRows: data.shuffleBlockRows, windowBlocks: data.shuffleWindowBlocks)
    }

    /// How gradients are combined across ranks.
    public var reductionOptions: ReductionOptions {
        ReductionOptions(sharedMemory: distributed.sharedMemory, bucketBytes: distributed.bucketBytes,
                         compression: distributed.gradientCompression, approximationRank: distributed.powerSGDApproximationRank,
                         deterministicGroup: training.deterministic ? training.deterministicGroup : nil, seed: seed,
                         balance: distributed.balance)
    }

    /// When the nodes synchronize.
    public var syncOptions: SyncOptions {
        SyncOptions(every: distributed.syncEvery, warmupSteps: distributed.syncWarmupSteps, outer: distributed.outerOptimizer,
                    sharedMemory: distributed.sharedMemory, overlap: distributed.syncOverlap)
    }

    /// What the training step needs, for a rank running `threads` threads.
    public func stepOptions(threads: Int) -> StepOptions {
        StepOptions(batchSize: training.batchSize, seed: seed, clipGradientNorm: training.clipGradientNorm, threads: threads,
                    timeoutSeconds: distributed.timeoutSeconds, prefetchBatches: data.prefetchBatches)
    }
}
