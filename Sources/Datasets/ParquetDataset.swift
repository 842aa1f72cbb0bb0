// Parquet input: one file or several (shards, the same columns in each, rows in file order). As in a CSV file, the
// columns named in `targets` are the targets and every other column is a numeric feature.
import Parquet
import Support

extension Dataset {
    /// Loads Parquet files; with `requireTargets: false` (prediction inputs) a target column may be absent (its
    /// values are then 0) and a target that is null or not a number becomes NaN.
    static func loadParquet(paths: [String], targets: [String], requireTargets: Bool) throws -> Dataset {
        try fromParquet(try paths.map { try ParquetFile(path: $0) }, targets: targets, requireTargets: requireTargets)
    }

    /// Makes a dataset of opened Parquet files, read a row group at a time.
    static func fromParquet(_ files: [ParquetFile], targets targetNames: [String], requireTargets: Bool) throws -> Dataset {
        precondition(!files.isEmpty && !targetNames.isEmpty, "Dataset.fromParquet: no files or no targets")
        let first = files[0]
        let names = first.columns.map(\.name)
        func listed(_ file: ParquetFile) -> String { file.columns.map { quotedForMessage($0.name) }.joined(separator: ", ") }
        for file in files.dropFirst() where file.columns.map(\.name) != names {
            throw UserError("\(file.path): columns \(listed(file)) differ from the first file \(first.path)'s (\(listed(first)))")
        }
        let targetColumns = targetNames.map { names.firstIndex(of: $0) }
        if requireTargets, let missing = zip(targetNames, targetColumns).first(where: { $0.1 == nil })?.0 {
            throw UserError("\(first.path): no \(quotedForMessage(missing)) column; columns are: \(listed(first))")
        }
        let featureColumns = names.indices.filter { !targetColumns.contains($0) }
        guard !featureColumns.isEmpty else {
            throw UserError("\(first.path): no feature columns besides " + targetNames.map { quotedForMessage($0) }.joined(separator: ", "))
        }
        var rows = 0
        for file in files {
            let (sum, overflow) = rows.addingReportingOverflow(file.rowCount)
            guard !overflow else { throw UserError("\(file.path): the files declare more rows than fit in memory") }
            rows = sum
        }
        guard rows > 0 else { throw UserError("\(first.path): no rows") }
        let width = featureColumns.count, targetWidth = targetNames.count
        try checkFitsInMemory(rows: rows, width: width + targetWidth, what: first.path)
        var features = [Float](repeating: 0, count: rows * width)
        var targets = [Float](repeating: 0, count: rows * targetWidth)
        var starts: [Int] = [], base = 0
        for file in files {
            starts.append(base)
            for group in 0..<(file.rowGroupStarts.count - 1) {
                let groupRows = file.rowGroupStarts[group]..<file.rowGroupStarts[group + 1]
                let columns = featureColumns.map { ($0, true) } + targetColumns.compactMap { $0.map { ($0, requireTargets) } }
                for (slot, (column, strict)) in columns.enumerated() {
                    let data = try file.read(column: column, rows: groupRows)
                    let isFeature = slot < width
                    let stride = isFeature ? width : targetWidth
                    let offset = isFeature ? slot : targetColumns.firstIndex(of: column)!
                    for index in 0..<groupRows.count {
                        let value = try number(data, index, strict: strict, location: "\(file.path) (row \(groupRows.lowerBound + index))")
                        let row = base + groupRows.lowerBound + index
                        if isFeature { features[row * stride + offset] = value } else { targets[row * stride + offset] = value }
                    }
                }
            }
            base += file.rowCount
        }
        return Dataset(count: rows, featureCount: width, features: .floats(features), targets: targets, targetNames: targetNames,
                       source: first.path, featureNames: featureColumns.map { names[$0] }, origin: .rows(paths: files.map(\.path), starts: starts))
    }

    /// Value `index` as a Float; a null, text or a value that is not finite as a Float is a `UserError` in the words
    /// CSV uses, or NaN when not `strict`.
    private static func number(_ data: ParquetColumnData, _ index: Int, strict: Bool, location: String) throws -> Float {
        let number = data.number(at: index)
        if let number, Float(number).isFinite { return Float(number) }
        guard strict else { return .nan }
        let column = quotedForMessage(data.column.name)
        if let number {
            throw UserError("\(location): \(number.isFinite ? "out-of-range" : "non-finite") value \(quotedForMessage("\(number)")) in column \(column)")
        }
        if let text = data.text(at: index) {
            throw UserError("\(location): non-numeric value \(quotedForMessage(text)) in column \(column)")
        }
        throw UserError("\(location): missing value in column \(column)")
    }
}
