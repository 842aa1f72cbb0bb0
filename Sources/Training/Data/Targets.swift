/// Names for `count` unnamed targets: `base` alone for one, `base_0`, `base_1`, ... for several.
func defaultTargetNames(count: Int, base: String) -> [String] {
    count == 1 ? [base] : (0..<count).map { "\(base)_\($0)" }
}

extension Dataset {
    /// Checks every target is 0 or 1 (multi-label classification); the first other value is a `UserError` naming its row.
    public func validateBinaryTargets() throws {
        for (index, value) in labels.enumerated() where value != 0 && value != 1 {
            let row = index / targetCount, target = index % targetCount
            throw UserError("\(location(ofRow: row)): target \(quotedForMessage(targetNames[target])) is \(value); "
                + "binary_cross_entropy needs 0 or 1")
        }
    }

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
