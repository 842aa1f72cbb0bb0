import Support
import Tables

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
    /// The data at `location` in `format`: an IDX prefix, a CSV file or an .npz file, its features by the default
    /// column rules (numbers only). `targets` names the CSV target columns (default `[label]`) or y's columns of an
    /// npz; with `requireTargets: false` (prediction inputs) the targets may be absent.
    public static func load(_ location: String, format: DataFormat, targets: [String]?,
                            requireTargets: Bool = true) throws -> Dataset {
        try LoadedData.load(location, format: format, targets: targets, requireTargets: requireTargets)
            .dataset(targets: targets ?? ["label"], requireTargets: requireTargets)
    }

    /// Loads a CSV file with a header row; the `targets` columns are the targets, every other column a numeric feature.
    /// With `requireTargets: false` (prediction inputs) target columns may be absent (their values are then 0)
    /// and, when present, a non-numeric target becomes NaN instead of an error.
    static func loadCSV(path: String, targets: [String] = ["label"], requireTargets: Bool = true) throws -> Dataset {
        try load(path, format: .csv, targets: targets, requireTargets: requireTargets)
    }
}
