import Distributed
import Formats
import Support
import Tables

extension Dataset {
    /// Sets the normalization used by `gather`; `standardize` and `quantile` use statistics of `training` (or of this
    /// dataset when nil), computed in Double: offset = mean, scale = 1/std (a constant feature gets scale 1), or each
    /// feature's quantiles (`quantileCount` of them), which map this dataset's values once, here. Features that are
    /// not `normalizable` keep offset 0 and scale 1. A dataset whose feature width differs from the training set's is
    /// a `UserError` naming this dataset's file. With a communicator the statistics pass is split across the ranks
    /// (each reads its slice of the rows).
    func applyNormalization(_ mode: Normalization, statisticsFrom training: Dataset? = nil, quantileCount: Int = 1000,
                            communicator: Communicator? = nil) throws {
        if let training, training.featureCount != featureCount {
            throw UserError("\(source): rows have \(featureCount) features but the training data \(training.source) has \(training.featureCount)")
        }
        precondition(normalization != .quantile, "Dataset.applyNormalization: quantiles were already applied")
        let reference = training ?? self
        switch mode {
        case .none:
            offset = [Float](repeating: 0, count: featureCount)
            scale = [Float](repeating: 1, count: featureCount)
        case .scale:
            offset = [Float](repeating: 0, count: featureCount)
            scale = [Float](repeating: 1 / 255, count: featureCount)
        case .standardize:
            if reference !== self, reference.normalization == .standardize {
                offset = reference.offset
                scale = reference.scale
            } else {
                let statistics = try reference.meanAndStandardDeviation(communicator: communicator)
                offset = statistics.mean
                scale = statistics.standardDeviation.map { 1 / $0 }
            }
        case .quantile:
            let fitted = reference !== self && reference.normalization == .quantile ? reference.quantiles
                : try reference.fitQuantiles(count: quantileCount)
            try applyQuantiles(fitted)
            return
        }
        if let normalizable {
            for feature in 0..<featureCount where !normalizable[feature] { (offset[feature], scale[feature]) = (0, 1) }
        }
        normalization = mode
    }

    /// Uses saved normalization parameters (e.g. from a model file) instead of computing them;
    /// `offset` and `scale` are only used for `standardize` and must have one value per feature, `quantiles` only for
    /// `quantile`.
    func applyNormalization(_ mode: Normalization, offset savedOffset: [Float], scale savedScale: [Float],
                            quantiles savedQuantiles: [FeatureQuantiles] = []) throws {
        if mode == .quantile { return try applyQuantiles(savedQuantiles) }
        guard mode == .standardize else { return try applyNormalization(mode, statisticsFrom: nil) }
        guard savedOffset.count == featureCount, savedScale.count == featureCount else {
            throw UserError("\(source): rows have \(featureCount) features but the saved normalization covers \(savedOffset.count)")
        }
        guard savedOffset.allSatisfy(\.isFinite), savedScale.allSatisfy(\.isFinite) else {
            throw UserError("\(source): the saved normalization parameters are not finite")
        }
        offset = savedOffset
        scale = savedScale
        normalization = mode
    }

    /// Sets the target normalization used by `gather`; `standardize` uses the mean and standard deviation of the
    /// targets of `training` (or of this dataset when nil), computed in Double; a constant target gets deviation 1.
    /// A dataset whose target count differs from the training set's is a `UserError` naming this dataset's file.
    func applyTargetNormalization(_ mode: TargetNormalization, statisticsFrom training: Dataset? = nil) throws {
        if let training, training.targetCount != targetCount {
            throw UserError("\(source): rows have \(targetCount) targets but the training data \(training.source) has \(training.targetCount)")
        }
        switch mode {
        case .none:
            setTargetNormalization(.none, mean: [Float](repeating: 0, count: targetCount),
                                   standardDeviation: [Float](repeating: 1, count: targetCount))
        case .standardize:
            let reference = training ?? self
            if reference !== self, reference.targetNormalization == .standardize {
                setTargetNormalization(.standardize, mean: reference.targetMean,
                                       standardDeviation: reference.targetStandardDeviation)
            } else {
                let targets = reference.targets, width = targetCount
                let statistics = try RowPassSource(count: reference.count, width: width) { range, output in
                    for index in 0..<(range.count * width) { output[index] = Double(targets[range.lowerBound * width + index]) }
                }.meanAndStandardDeviation(communicator: nil)
                setTargetNormalization(.standardize, mean: statistics.mean, standardDeviation: statistics.standardDeviation)
            }
        }
    }

    /// Uses saved target normalization parameters (e.g. from a model file), one mean and deviation per target.
    func applyTargetNormalization(_ mode: TargetNormalization, mean: [Float], standardDeviation: [Float]) throws {
        guard mode == .standardize else { return try applyTargetNormalization(mode) }
        guard mean.count == targetCount, standardDeviation.count == targetCount else {
            throw UserError("\(source): rows have \(targetCount) targets but the saved target normalization covers \(mean.count)")
        }
        guard mean.allSatisfy(\.isFinite), standardDeviation.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            throw UserError("\(source): the saved target normalization parameters are not finite and positive")
        }
        setTargetNormalization(mode, mean: mean, standardDeviation: standardDeviation)
    }

    func setTargetNormalization(_ mode: TargetNormalization, mean: [Float], standardDeviation: [Float]) {
        targetMean = mean
        targetStandardDeviation = standardDeviation
        targetScale = standardDeviation.map { 1 / $0 }
        targetNormalization = mode
    }

    /// Per-feature mean and population standard deviation of the raw features, computed in Double in row order;
    /// with a communicator each rank reads only its slice of the rows (the result is the same on any number of ranks).
    func meanAndStandardDeviation(communicator: Communicator? = nil) throws -> (mean: [Float], standardDeviation: [Float]) {
        try featurePass.meanAndStandardDeviation(communicator: communicator)
    }

    /// The raw features as a pass reads them: any range of rows as Doubles.
    var featurePass: RowPassSource {
        RowPassSource(count: count, width: featureCount) { [self] range, output in
            let width = featureCount
            switch features {
            case let .bytes(values):
                values.withUnsafeBufferPointer { raw in
                    for index in 0..<(range.count * width) { output[index] = Double(raw[range.lowerBound * width + index]) }
                }
            case let .floats(values):
                values.withUnsafeBufferPointer { raw in
                    for index in 0..<(range.count * width) { output[index] = Double(raw[range.lowerBound * width + index]) }
                }
            case let .file(file):
                // The file rows of these rows ascend (a subset keeps file order): read their span once, keep the rows.
                let first = storageRow(range.lowerBound), span = storageRow(range.upperBound - 1) + 1 - first
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: span * width)
                defer { scratch.deallocate() }
                try file.read(first..<(first + span), into: scratch)
                for (index, row) in range.enumerated() {
                    let source = scratch + (storageRow(row) - first) * width
                    for column in 0..<width { output[index * width + column] = Double(source[column]) }
                }
            }
        }
    }

    /// The row of the feature storage that holds row `row`: itself, or for rows left in files, its file row.
    @inline(__always)
    func storageRow(_ row: Int) -> Int {
        guard case .file = features, let fileRows else { return row }
        return fileRows[row]
    }

    /// Reads every feature row of a file-backed dataset once, each of `parts` a slice (`part`), so a value that is
    /// not finite as a Float is an error before training starts; in-memory features were checked when read.
    func verifyFileRows(part: Int, of parts: Int) throws {
        if case let .file(file) = features { try file.verify(part: part, of: parts) }
    }

    /// Copies one row's raw features into `scratch` as Doubles.
    func loadRow(_ row: Int, _ scratch: UnsafeMutableBufferPointer<Double>) throws {
        try featurePass.load(row..<(row + 1), scratch)
    }
}
