import Formats
import Support
import Tables

extension Dataset {
    /// Sets the normalization used by `gather`; `standardize` and `quantile` use statistics of `training` (or of this
    /// dataset when nil), computed in Double: offset = mean, scale = 1/std (a constant feature gets scale 1), or each
    /// feature's quantiles (`quantileCount` of them), which map this dataset's values once, here. Features that are
    /// not `normalizable` keep offset 0 and scale 1. A dataset whose feature width differs from the training set's is
    /// a `UserError` naming this dataset's file.
    func applyNormalization(_ mode: Normalization, statisticsFrom training: Dataset? = nil, quantileCount: Int = 1000) throws {
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
                let statistics = reference.meanAndStandardDeviation()
                offset = statistics.mean
                scale = statistics.standardDeviation.map { 1 / $0 }
            }
        case .quantile:
            let fitted = reference !== self && reference.normalization == .quantile ? reference.quantiles
                : reference.fitQuantiles(count: quantileCount)
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
                let statistics = reference.targets.withUnsafeBufferPointer { targets in
                    Dataset.columnStatistics(rows: reference.count, width: targetCount) { row, scratch in
                        for j in 0..<scratch.count { scratch[j] = Double(targets[row * scratch.count + j]) }
                    }
                }
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

    /// Per-feature mean and population standard deviation of the raw features, computed in Double;
    /// a constant feature gets standard deviation 1 so it maps to 0 rather than NaN.
    func meanAndStandardDeviation() -> (mean: [Float], standardDeviation: [Float]) {
        Dataset.columnStatistics(rows: count, width: featureCount, loadRow: loadRow)
    }

    /// Per-column mean and population standard deviation of `rows` rows of `width` values that `loadRow` writes as
    /// Doubles; a constant column gets standard deviation 1 so it maps to 0 rather than NaN.
    static func columnStatistics(rows: Int, width: Int, loadRow: (Int, UnsafeMutableBufferPointer<Double>) -> Void)
        -> (mean: [Float], standardDeviation: [Float]) {
        var mean = [Double](repeating: 0, count: width)
        var squares = [Double](repeating: 0, count: width)
        var scratch = [Double](repeating: 0, count: width)
        // Two passes (mean, then squared deviations) stay accurate for features with a large common offset.
        mean.withUnsafeMutableBufferPointer { mean in
            squares.withUnsafeMutableBufferPointer { squares in
                scratch.withUnsafeMutableBufferPointer { scratch in
                    for pass in 0..<2 {
                        for row in 0..<rows {
                            loadRow(row, scratch)
                            if pass == 0 {
                                for feature in 0..<width { mean[feature] += scratch[feature] }
                            } else {
                                for feature in 0..<width {
                                    let deviation = scratch[feature] - mean[feature]
                                    squares[feature] += deviation * deviation
                                }
                            }
                        }
                        if pass == 0 {
                            for feature in 0..<width { mean[feature] /= Double(max(rows, 1)) }
                        }
                    }
                }
            }
        }
        let deviation = squares.map { sum -> Float in
            let value = Float((sum / Double(max(rows, 1))).squareRoot())
            return value > 0 && value.isFinite ? value : 1
        }
        return (mean.map { Float($0) }, deviation)
    }

    /// Copies one row's raw features into `scratch` as Doubles.
    func loadRow(_ row: Int, _ scratch: UnsafeMutableBufferPointer<Double>) {
        let width = featureCount, start = row * featureCount
        switch features {
        case let .bytes(values):
            values.withUnsafeBufferPointer { raw in
                for feature in 0..<width { scratch[feature] = Double(raw[start + feature]) }
            }
        case let .floats(values):
            values.withUnsafeBufferPointer { raw in
                for feature in 0..<width { scratch[feature] = Double(raw[start + feature]) }
            }
        }
    }

}
