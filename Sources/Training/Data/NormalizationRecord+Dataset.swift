// Bridges Dataset normalization to the model file's NormalizationRecord (defined in Run/ModelFile.swift).
extension Dataset {
    /// The normalization of features and targets in effect, and the targets' names, as stored in model files.
    public var normalizationRecord: NormalizationRecord {
        let standardized = normalization == .standardize, targetsStandardized = targetNormalization == .standardize
        return NormalizationRecord(mode: normalization, offset: standardized ? offset : [], scale: standardized ? scale : [],
                                   targetNames: targetNames, targetMode: targetNormalization,
                                   targetMean: targetsStandardized ? targetMean : [],
                                   targetStandardDeviation: targetsStandardized ? targetStandardDeviation : [])
    }

    /// Applies the feature normalization saved in a model file (a width mismatch is a `UserError` naming this dataset).
    public func applyNormalization(_ record: NormalizationRecord) throws {
        try applyNormalization(record.mode, offset: record.offset, scale: record.scale)
    }

    /// Applies the target normalization saved in a model file (a count mismatch is a `UserError` naming this dataset).
    public func applyTargetNormalization(_ record: NormalizationRecord) throws {
        try applyTargetNormalization(record.targetMode, mean: record.targetMean, standardDeviation: record.targetStandardDeviation)
    }
}
