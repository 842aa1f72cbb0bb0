#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Support
import Tables

/// How a data set is stored: IDX images and labels, CSV, a NumPy `.npz` archive or `.npy` files, HDF5, or Parquet.
public enum DataFormat: String, CaseIterable, Sendable {
    case idx, csv, npz, npy, hdf5, parquet

    /// The format a location implies: its (first) file's extension (`.csv`, `.npz`, `.npy`, `.h5`/`.hdf5`/`.hdf`,
    /// `.parquet`/`.pq`), `npy` for an `{x:, y:}` pair, `hdf5` for named arrays of a file without one of those
    /// extensions, else an IDX prefix.
    public init(impliedBy location: DataLocation) {
        switch location {
        case let .path(path): self = DataFormat(extensionOf: path) ?? .idx
        case let .shards(paths): self = paths.first.flatMap(DataFormat.init(extensionOf:)) ?? .idx
        case .pair: self = .npy
        case let .arrays(files, _, _): self = files.first.flatMap(DataFormat.init(extensionOf:)) ?? .hdf5
        }
    }

    /// The format of a file named `path`, if its extension says.
    init?(extensionOf path: String) {
        let name = path.lowercased()
        let extensions: [(String, DataFormat)] = [(".csv", .csv), (".npz", .npz), (".npy", .npy), (".h5", .hdf5),
                                                  (".hdf5", .hdf5), (".hdf", .hdf5), (".parquet", .parquet), (".pq", .parquet)]
        guard let format = extensions.first(where: { name.hasSuffix($0.0) })?.1 else { return nil }
        self = format
    }
}

/// Where a data set is: one file or IDX prefix (or a glob pattern of shards), a list of shards read in order, an
/// `.npy` pair, or arrays named in HDF5 (or npz) files.
public enum DataLocation: Equatable, Sendable, CustomStringConvertible {
    /// A file, an IDX prefix, or a pattern with `*`, `?` or `[` matching shards (read in sorted order).
    case path(String)
    /// Files of one format whose rows are read one file after the other.
    case shards([String])
    /// Features and targets in two `.npy` files: `{x: X_PATH, y: Y_PATH}`; targets may be absent (prediction inputs).
    case pair(features: String, targets: String?)
    /// Arrays named in a file, or in each of several shards: `{file: PATH, x: NAME, y: NAME}`.
    case arrays(files: [String], features: String, targets: String)

    /// As the config writes it: the path itself, else the YAML flow text (`[a.parquet, b.parquet]`, `{x: ..., y: ...}`).
    public var description: String {
        if case let .path(path) = self { return path }
        return yamlText
    }

    /// One line of YAML that reads back as this location.
    public var yamlText: String {
        func list(_ paths: [String]) -> String { "[" + paths.map(quotedString).joined(separator: ", ") + "]" }
        switch self {
        case let .path(path): return quotedString(path)
        case let .shards(paths): return list(paths)
        case let .pair(features, targets):
            return "{x: \(quotedString(features))" + (targets.map { ", y: \(quotedString($0))" } ?? "") + "}"
        case let .arrays(files, features, targets):
            return "{file: \(files.count == 1 ? quotedString(files[0]) : list(files)), x: \(quotedString(features)), "
                + "y: \(quotedString(targets))}"
        }
    }

    /// The files in reading order, each pattern replaced by the files it matches (sorted); a pattern that matches
    /// nothing is a `UserError`.
    func files() throws -> [String] {
        switch self {
        case let .path(path): return try Self.expand(path)
        case let .shards(paths): return try paths.flatMap(Self.expand)
        case let .pair(features, targets): return [features] + (targets.map { [$0] } ?? [])
        case let .arrays(files, _, _): return try files.flatMap(Self.expand)
        }
    }

    /// `path` itself, or the files a glob pattern matches, sorted by name.
    private static func expand(_ path: String) throws -> [String] {
        guard path.contains(where: { "*?[".contains($0) }) else { return [path] }
        var matches = glob_t()
        defer { globfree(&matches) }
        guard glob(path, 0, nil, &matches) == 0 else { throw UserError("\(path): no files match this pattern") }
        return (0..<Int(matches.gl_pathc)).compactMap { matches.gl_pathv[$0].map { String(cString: $0) } }.sorted()
    }
}

extension Dataset {
    /// The data at `location` in `format`, its features by the default column rules (numbers only). `targets` names
    /// the target columns of CSV and Parquet data (default `[label]`) or the columns of y of npz, npy and HDF5 data;
    /// with `requireTargets: false` (prediction inputs) the targets may be absent. Shards (several npz, HDF5 or
    /// Parquet files) are one data set, rows in file order.
    public static func load(_ location: DataLocation, format: DataFormat, targets: [String]?,
                            requireTargets: Bool = true) throws -> Dataset {
        try LoadedData.load(location, format: format, targets: targets, requireTargets: requireTargets)
            .dataset(targets: targets ?? ["label"], requireTargets: requireTargets)
    }

    /// Loads a CSV file with a header row; the `targets` columns are the targets, every other column a numeric feature.
    /// With `requireTargets: false` (prediction inputs) target columns may be absent (their values are then 0)
    /// and, when present, a non-numeric target becomes NaN instead of an error.
    static func loadCSV(path: String, targets: [String] = ["label"], requireTargets: Bool = true) throws -> Dataset {
        try load(.path(path), format: .csv, targets: targets, requireTargets: requireTargets)
    }

    /// The numeric rows of array formats (IDX, npz, npy, HDF5); `gapsAllowed` keeps an npz's NaN features (gaps).
    static func loadRows(_ location: DataLocation, files: [String], format: DataFormat, targets: [String]?,
                         requireTargets: Bool, gapsAllowed: Bool) throws -> Dataset {
        switch format {
        case .idx: return try loadIDX(prefix: try location.single(files: files, format: format))
        case .csv, .parquet: preconditionFailure("Dataset.loadRows: \(format) is read as a table")
        case .npy:
            switch location {
            case let .pair(features, targetsPath):
                return try loadNPY(features: features, targets: targetsPath, targetNames: targets, requireTargets: requireTargets)
            case let .path(path) where files.count == 1 && !requireTargets:
                return try loadNPY(features: path, targets: nil, targetNames: targets, requireTargets: false)
            default:
                throw UserError("\(location): .npy data is a pair of files, {x: FEATURES.npy, y: TARGETS.npy}")
            }
        case .npz, .hdf5:
            var arrays: (features: String?, targets: String?) = (nil, nil)
            switch location {
            case let .arrays(_, features, targets): arrays = (features, targets)
            case .pair: throw UserError("\(location): an {x:, y:} pair is for .npy files; name \(format) arrays with {file:, x:, y:}")
            default: break
            }
            let parts = try files.map { file in
                format == .npz
                    ? try loadNPZ(path: file, targetNames: targets, requireTargets: requireTargets, arrays: arrays,
                                  gapsAllowed: gapsAllowed)
                    : try loadHDF5(path: file, features: arrays.features ?? "x", targets: arrays.targets ?? "y",
                                   targetNames: targets, requireTargets: requireTargets)
            }
            return try concatenating(parts)
        }
    }
}

extension DataLocation {
    /// The one file (or IDX prefix) of a format that is not sharded; a list or pattern is a `UserError`.
    func single(files: [String], format: DataFormat) throws -> String {
        guard case let .path(path) = self, files.count == 1 else {
            throw UserError("\(self): \(format.rawValue.uppercased()) data is one \(format == .idx ? "prefix" : "file"); shards "
                + "(a list or a pattern) are read for npz, HDF5 and Parquet")
        }
        return path
    }
}
