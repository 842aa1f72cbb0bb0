extension Dataset {
    /// The data at `location` in `format`: an IDX prefix, a CSV file or an .npz file. `targets` names the CSV target
    /// columns (default `[label]`) or y's columns of an npz; with `requireTargets: false` (prediction inputs) the
    /// targets may be absent.
    public static func load(_ location: String, format: TrainingConfig.DataSection.Format, targets: [String]?,
                            requireTargets: Bool = true) throws -> Dataset {
        switch format {
        case .idx: return try loadIDX(prefix: location)
        case .csv: return try loadCSV(path: location, targets: targets ?? ["label"], requireTargets: requireTargets)
        case .npz: return try loadNPZ(path: location, targetNames: targets, requireTargets: requireTargets)
        }
    }
}
