import Support

/// How a data file is stored: IDX images and labels, CSV, or a NumPy `.npz` archive.
public enum DataFormat: String, CaseIterable, Sendable {
    case idx, csv, npz

    /// The format a data location's name implies: `.csv` and `.npz` files, else an IDX prefix.
    public init(impliedBy location: String) {
        let lowered = location.lowercased()
        self = lowered.hasSuffix(".csv") ? .csv : lowered.hasSuffix(".npz") ? .npz : .idx
    }
}

extension Dataset {
    /// The data at `location` in `format`: an IDX prefix, a CSV file or an .npz file. `targets` names the CSV target
    /// columns (default `[label]`) or y's columns of an npz; with `requireTargets: false` (prediction inputs) the
    /// targets may be absent.
    public static func load(_ location: String, format: DataFormat, targets: [String]?,
                            requireTargets: Bool = true) throws -> Dataset {
        switch format {
        case .idx: return try loadIDX(prefix: location)
        case .csv: return try loadCSV(path: location, targets: targets ?? ["label"], requireTargets: requireTargets)
        case .npz: return try loadNPZ(path: location, targetNames: targets, requireTargets: requireTargets)
        }
    }
}
