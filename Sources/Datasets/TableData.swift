// Tables: data whose columns have names (CSV, npz with gaps), turned into features by column rules fitted on the
// training rows (Sources/Tables): categories, gaps and their fills, sample weights, class names.
import Formats
import Parquet
import Support
import Tables

/// Data as read, before the column rules are fitted: a table of named columns, or rows that are numeric already.
public enum LoadedData {
    /// Named columns (CSV; npz with gaps); features come from a `TableEncoding` fitted on the training rows.
    case table(ColumnTable)
    /// Rows as they are (IDX, npz).
    case rows(Dataset)

    /// Reads the data at `location` in `format`. `targets` names the target columns (CSV, Parquet; default `[label]`) or
    /// y's columns (npz, npy, HDF5); `rules` says which columns are text and whether an npz's NaN is a gap (else an
    /// error); `classTargets` keeps the target's text, for class names. With `requireTargets: false` (prediction
    /// inputs) the targets may be absent.
    public static func load(_ location: DataLocation, format: DataFormat, targets: [String]?, rules: ColumnRules = ColumnRules(),
                            classTargets: Bool = false, requireTargets: Bool = true) throws -> LoadedData {
        let files = try location.files()
        let names = targets ?? ["label"]
        let textColumns = rules.textColumns(targets: names, classTargets: classTargets)
        switch format {
        case .csv:
            let path = try location.single(files: files, format: format)
            return .table(try CSV.read(FileIO.readBytes(path: path), path: path, textColumns: textColumns,
                                       requiredColumns: requireTargets ? names : []))
        case .parquet:
            if case .pair = location { throw UserError("\(location): Parquet data is a file, a pattern or a list of shards") }
            if case .arrays = location { throw UserError("\(location): Parquet data is a file, a pattern or a list of shards") }
            let opened = try files.map { try ParquetFile(path: $0) }
            if let rows = try Dataset.parquetRows(opened, rules: rules, targets: names, classTargets: classTargets,
                                                  requireTargets: requireTargets) {
                return .rows(rows)
            }
            return .table(try Dataset.parquetTable(opened, textColumns: textColumns, targets: names, requireTargets: requireTargets))
        case .idx, .npz, .npy, .hdf5:
            let data = try Dataset.loadRows(location, files: files, format: format, targets: targets,
                                            requireTargets: requireTargets, gapsAllowed: rules.missing != .error)
            return data.hasGaps ? .table(try data.columnTable()) : .rows(data)
        }
    }

    /// The rows of a table encoded with `encoding` (every row when nil: the rules are fitted on all of them), or the
    /// rows themselves (as a table when `encoding` is given: an npz without gaps read for a model that fills them).
    public func dataset(encoding: TableEncoding? = nil, rules: ColumnRules = ColumnRules(), targets: [String] = ["label"],
                        classTargets: Bool = false, requireTargets: Bool = true) throws -> Dataset {
        switch self {
        case let .rows(dataset) where encoding == nil: return dataset
        case let .rows(dataset): return try Dataset(table: dataset.columnTable(), encoding: encoding!, requireTargets: requireTargets)
        case let .table(table):
            let fitted = try encoding ?? TableEncoding.fit(table, rows: Array(0..<table.rowCount), rules: rules, targets: targets,
                                                           classTargets: classTargets)
            return try Dataset(table: table, encoding: fitted, requireTargets: requireTargets)
        }
    }

    /// How many rows there are.
    var rowCount: Int {
        switch self {
        case let .table(table): return table.rowCount
        case let .rows(dataset): return dataset.count
        }
    }

    /// Keeps only the first `maximumCount` rows.
    public mutating func limit(to maximumCount: Int) {
        switch self {
        case var .table(table):
            table.limit(to: maximumCount)
            self = .table(table)
        case let .rows(dataset): dataset.limit(to: maximumCount)
        }
    }

    /// The data as a table (rows already numeric become columns `x_0`, `x_1`, ... and their targets).
    public var asTable: ColumnTable {
        get throws {
            switch self {
            case let .table(table): return table
            case let .rows(dataset): return try dataset.columnTable()
            }
        }
    }
}

extension Dataset {
    /// Rows `rows` (default: all) of `table` as features by `encoding`; errors name the table's file and line.
    convenience init(table: ColumnTable, encoding: TableEncoding, rows: [Int]? = nil, requireTargets: Bool = true) throws {
        let encoded = try encoding.encode(table, rows: rows, requireTargets: requireTargets)
        let origin: Origin = encoded.lines.map { .csv(path: table.source, lines: $0) }
            ?? .rows(paths: table.files.paths, starts: table.files.starts)
        self.init(count: encoded.rows.count, featureCount: encoding.featureCount, features: .floats(encoded.features),
                  targets: encoded.targets, targetNames: encoding.targets, source: table.source,
                  featureNames: encoding.featureNames, origin: origin)
        if encoded.lines == nil { fileRows = encoded.rows }
        self.encoding = encoding.isPlain ? nil : encoding
        normalizable = encoding.normalizable
        sampleWeights = encoded.weights
        rowWeights = encoded.weights
        unseen = encoded.unseen
    }

    /// The features as numeric columns (their names, else `x_0`, `x_1`, ...) and the targets under their names, each row's gaps NaN.
    func columnTable() throws -> ColumnTable {
        var columns: [ColumnTable.Column] = []
        var scratch = [Double](repeating: 0, count: featureCount)
        var values = [[Float]](repeating: [Float](repeating: 0, count: count), count: featureCount)
        try scratch.withUnsafeMutableBufferPointer { scratch in
            for row in 0..<count {
                try loadRow(row, scratch)
                for feature in 0..<featureCount { values[feature][row] = Float(scratch[feature]) }
            }
        }
        for (feature, cells) in values.enumerated() {
            let gaps = cells.indices.filter { cells[$0].isNaN }.map { (row: $0, text: String?.none) }
            let name = featureNames.count == featureCount ? featureNames[feature] : "x_\(feature)"
            columns.append(ColumnTable.Column(name: name, cells: .numbers(cells), nonNumbers: gaps))
        }
        for (slot, name) in targetNames.enumerated() {
            columns.append(ColumnTable.Column(name: name, cells: .numbers((0..<count).map { targets[$0 * targetCount + slot] })))
        }
        guard case let .rows(paths, starts) = origin else { return ColumnTable(source: source, columns: columns, rowCount: count) }
        return ColumnTable(source: source, columns: columns, rowCount: count, files: (paths, starts))
    }

    /// Whether any feature is NaN (a gap an npz file may hold).
    var hasGaps: Bool {
        guard case let .floats(values) = features else { return false }
        return values.contains { $0.isNaN }
    }

    /// Each row's loss weight becomes its sample weight × `classWeights[its class]` (nil: the sample weight alone).
    public func applyClassWeights(_ classWeights: [Float]?) {
        guard let classWeights else { rowWeights = sampleWeights; return }
        rowWeights = (0..<count).map { row in
            (sampleWeights?[row] ?? 1) * classWeights[min(max(0, Int(targets[row * targetCount])), classWeights.count - 1)]
        }
    }

    /// How many rows each of `classCount` classes has (one class index per row).
    public func classCounts(classCount: Int) -> [Int] {
        var counts = [Int](repeating: 0, count: classCount)
        for row in 0..<count {
            let label = Int(targets[row * targetCount])
            if label >= 0 && label < classCount { counts[label] += 1 }
        }
        return counts
    }

    /// The class names of a class column that held text (nil: classes are integer indices).
    public var classNames: [String]? { encoding?.classNames }

    // MARK: - Quantiles

    /// Each normalizable feature's quantiles over this dataset's rows (one without quantiles for the others).
    func fitQuantiles(count levels: Int) throws -> [FeatureQuantiles] {
        var columns = [[Double]](repeating: [], count: featureCount)
        var scratch = [Double](repeating: 0, count: featureCount)
        try scratch.withUnsafeMutableBufferPointer { scratch in
            for row in 0..<count {
                try loadRow(row, scratch)
                for feature in 0..<featureCount where normalizable?[feature] ?? true { columns[feature].append(scratch[feature]) }
            }
        }
        return columns.indices.map { feature in
            guard normalizable?[feature] ?? true else { return FeatureQuantiles(values: []) }
            return FeatureQuantiles(fitting: &columns[feature], levels: levels)
        }
    }

    /// Maps every normalizable feature of every row through `quantiles` (one per feature), once.
    func applyQuantiles(_ quantiles: [FeatureQuantiles]) throws {
        guard quantiles.count == featureCount else {
            throw UserError("\(source): rows have \(featureCount) features but the saved quantiles cover \(quantiles.count)")
        }
        var values: [Float]
        switch features {
        case let .bytes(bytes): values = bytes.withUnsafeBufferPointer { $0.map { Float($0) } }
        case let .floats(floats): values = floats
        case .file:
            // Quantiles map values one by one, so rows left in their files come into memory here.
            var rows = [Double](repeating: 0, count: count * featureCount)
            try rows.withUnsafeMutableBufferPointer { try featurePass.load(0..<count, $0) }
            values = rows.map { Float($0) }
            fileRows = nil
        }
        features = .floats([])
        for feature in 0..<featureCount where normalizable?[feature] ?? true {
            let mapping = quantiles[feature]
            for row in 0..<count { values[row * featureCount + feature] = Float(mapping.transform(Double(values[row * featureCount + feature]))) }
        }
        features = .floats(values)
        self.quantiles = quantiles
        offset = [Float](repeating: 0, count: featureCount)
        scale = [Float](repeating: 1, count: featureCount)
        normalization = .quantile
    }
}

extension Dataset {
    /// The rows of CSV `bytes` by the default column rules (`path` names them in errors).
    static func fromCSV(_ bytes: [UInt8], path: String, targets: [String], requireTargets: Bool) throws -> Dataset {
        try LoadedData.table(CSV.read(bytes, path: path, requiredColumns: requireTargets ? targets : []))
            .dataset(targets: targets, requireTargets: requireTargets)
    }
}
