import Support
import Tables

/// How a model's data was laid out and normalized: the feature mode and, for standardize, per-feature offset and
/// scale; the targets' names and their normalization (mean and deviation for standardize).
public struct NormalizationRecord: Equatable {
    public var mode: Normalization
    /// x' = (x − offset) · scale, per feature (empty unless standardize).
    public var offset: [Float]
    public var scale: [Float]
    /// The targets in output order (`predict` names its columns after them).
    public var targetNames: [String]
    public var targetMode: TargetNormalization
    /// t' = (t − targetMean) / targetStandardDeviation, per target (empty unless standardize); `predict` undoes it.
    public var targetMean: [Float]
    public var targetStandardDeviation: [Float]
    /// Per-feature quantiles of `quantile` (empty otherwise; a feature it does not apply to has none).
    public var quantiles: [FeatureQuantiles] = []
    /// How a table's raw rows became the features (nil for IDX and npz data).
    public var encoding: TableEncoding?
    /// The feature columns' names in input order (CSV header, Parquet schema); empty for data without names.
    public var featureNames: [String]

    public init(mode: Normalization, offset: [Float], scale: [Float], targetNames: [String] = ["label"],
                targetMode: TargetNormalization = .none, targetMean: [Float] = [], targetStandardDeviation: [Float] = [],
                featureNames: [String] = []) {
        (self.mode, self.offset, self.scale, self.featureNames) = (mode, offset, scale, featureNames)
        (self.targetNames, self.targetMode, self.targetMean, self.targetStandardDeviation)
            = (targetNames, targetMode, targetMean, targetStandardDeviation)
    }
}

extension Dataset {
    /// The normalization of features and targets in effect, and the targets' names, as stored in model files.
    public var normalizationRecord: NormalizationRecord {
        let standardized = normalization == .standardize, targetsStandardized = targetNormalization == .standardize
        var record = NormalizationRecord(mode: normalization, offset: standardized ? offset : [], scale: standardized ? scale : [],
                                         targetNames: targetNames, targetMode: targetNormalization,
                                         targetMean: targetsStandardized ? targetMean : [],
                                         targetStandardDeviation: targetsStandardized ? targetStandardDeviation : [],
                                         featureNames: featureNames)
        record.quantiles = normalization == .quantile ? quantiles : []
        record.encoding = encoding
        return record
    }

    /// Applies the feature normalization saved in a model file (a width mismatch is a `UserError` naming this dataset).
    /// Rows left in their files are checked first (every value finite as a Float), as a training run checks them.
    public func applyNormalization(_ record: NormalizationRecord) throws {
        try verifyFileRows(part: 0, of: 1)
        try applyNormalization(record.mode, offset: record.offset, scale: record.scale, quantiles: record.quantiles)
    }

    /// Applies the target normalization saved in a model file (a count mismatch is a `UserError` naming this dataset).
    public func applyTargetNormalization(_ record: NormalizationRecord) throws {
        try applyTargetNormalization(record.targetMode, mean: record.targetMean, standardDeviation: record.targetStandardDeviation)
    }
}
