// Bridges Dataset normalization to the model file's NormalizationRecord (defined in Run/ModelFile.swift).
extension Dataset {
    /// The normalization in effect, as stored in model files (offset and scale only for standardize).
    public var normalizationRecord: NormalizationRecord {
        normalization == .standardize
            ? NormalizationRecord(mode: .standardize, offset: offset, scale: scale)
            : NormalizationRecord(mode: normalization, offset: [], scale: [])
    }

    /// Applies the normalization saved in a model file (a width mismatch is a `UserError` naming this dataset).
    public func applyNormalization(_ record: NormalizationRecord) throws {
        try applyNormalization(record.mode, offset: record.offset, scale: record.scale)
    }
}
