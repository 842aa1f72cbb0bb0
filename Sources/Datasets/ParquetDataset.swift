// Parquet input: one file or several (shards, the same columns in each, rows in file order), read as a column table
// that the column rules turn into features, as a CSV file's.
import Formats
import Parquet
import Support

extension Dataset {
    /// Loads Parquet files with the default column rules (every column but the targets a numeric feature); with
    /// `requireTargets: false` (prediction inputs) a target column may be absent (its values are then 0) and a target
    /// that is null or not a number becomes NaN.
    static func loadParquet(paths: [String], targets: [String], requireTargets: Bool) throws -> Dataset {
        try fromParquet(try paths.map { try ParquetFile(path: $0) }, targets: targets, requireTargets: requireTargets)
    }

    /// Makes a dataset of opened Parquet files by the default column rules.
    static func fromParquet(_ files: [ParquetFile], targets: [String], requireTargets: Bool) throws -> Dataset {
        try LoadedData.table(parquetTable(files, textColumns: [], targets: targets, requireTargets: requireTargets))
            .dataset(targets: targets, requireTargets: requireTargets)
    }

    /// The columns of opened Parquet files, read a row group at a time: a column named in `textColumns` as text (numbers
    /// written as `numberText` does), every other as numbers (a null, a text cell or a value not finite as a Float is
    /// NaN, its text kept for the column rules' messages). With `requireTargets` a missing target column is a `UserError`.
    static func parquetTable(_ files: [ParquetFile], textColumns: Set<String>, targets: [String],
                             requireTargets: Bool) throws -> ColumnTable {
        precondition(!files.isEmpty, "Dataset.parquetTable: no files")
        let first = files[0]
        let names = first.columns.map(\.name)
        func listed(_ file: ParquetFile) -> String { file.columns.map { quotedForMessage($0.name) }.joined(separator: ", ") }
        for file in files.dropFirst() where file.columns.map(\.name) != names {
            throw UserError("\(file.path): columns \(listed(file)) differ from the first file \(first.path)'s (\(listed(first)))")
        }
        if requireTargets, let missing = targets.first(where: { !names.contains($0) }) {
            throw UserError("\(first.path): no \(quotedForMessage(missing)) column; columns are: \(listed(first))")
        }
        var rows = 0
        for file in files {
            let (sum, overflow) = rows.addingReportingOverflow(file.rowCount)
            guard !overflow else { throw UserError("\(file.path): the files declare more rows than fit in memory") }
            rows = sum
        }
        guard rows > 0 else { throw UserError("\(first.path): no rows") }
        try checkFitsInMemory(rows: rows, width: names.count, what: first.path)
        var numbers = [[Float]](repeating: [], count: names.count)
        var texts = [[String?]](repeating: [], count: names.count)
        var nonNumbers = [[(row: Int, text: String?)]](repeating: [], count: names.count)
        var starts: [Int] = [], base = 0
        for file in files {
            starts.append(base)
            for group in 0..<(file.rowGroupStarts.count - 1) {
                let groupRows = file.rowGroupStarts[group]..<file.rowGroupStarts[group + 1]
                for (column, name) in names.enumerated() {
                    let data = try file.read(column: column, rows: groupRows)
                    for index in 0..<groupRows.count {
                        let number = data.number(at: index)
                        if textColumns.contains(name) {
                            texts[column].append(number.map { numberText(Float($0)) } ?? data.text(at: index))
                        } else if let number, Float(number).isFinite {
                            numbers[column].append(Float(number))
                        } else {
                            numbers[column].append(.nan)
                            nonNumbers[column].append((base + groupRows.lowerBound + index, number.map { "\($0)" } ?? data.text(at: index)))
                        }
                    }
                }
            }
            base += file.rowCount
        }
        let columns = names.indices.map { column in
            textColumns.contains(names[column])
                ? ColumnTable.Column(name: names[column], cells: .text(texts[column]))
                : ColumnTable.Column(name: names[column], cells: .numbers(numbers[column]), nonNumbers: nonNumbers[column])
        }
        return ColumnTable(source: first.path, columns: columns, rowCount: rows, files: (files.map(\.path), starts))
    }
}
