// Fuzz target: Parquet bytes → ParquetFile (footer: thrift compact protocol, schema, row groups, column chunks), then
// every column read over the first rows and over a range in the middle (page headers, levels, PLAIN and dictionary
// values, RLE booleans, Snappy, gzip and Zstandard pages), then Dataset.fromParquet with `label` as the target.
@testable import Datasets
@testable import Formats
import FuzzSupport
@testable import Parquet

runFuzzer { data, size in
    let bytes = fuzzBytes(data, size)
    expectUserErrorOnly("ParquetFile") {
        let file = try ParquetFile(FileBytes(copying: bytes), path: "fuzz.parquet")
        precondition(file.rowGroupStarts.first == 0 && file.rowGroupStarts.last == file.rowCount, "row groups do not cover the rows")
        // Row counts come from the footer: read bounded ranges (allocation follows the rows asked for).
        let middle = file.rowCount / 2
        for rows in [0..<min(file.rowCount, 4096), middle..<min(file.rowCount, middle + 7)] {
            for column in file.columns.indices {
                expectUserErrorOnly("ParquetFile.read(column: \(column), rows: \(rows))") {
                    let values = try file.read(column: column, rows: rows)
                    precondition(values.nulls.map { $0.count == rows.count } ?? true, "nulls do not fit the rows")
                    for row in 0..<rows.count { _ = (values.number(at: row), values.text(at: row)) }
                }
            }
        }
        if file.rowCount <= 50_000 {
            for requireTargets in [true, false] {
                expectUserErrorOnly("Dataset.fromParquet(requireTargets: \(requireTargets))") {
                    let dataset = try Dataset.fromParquet([file], targets: ["label"], requireTargets: requireTargets)
                    checkDataset(dataset)
                    try dataset.applyNormalization(.standardize)
                    gatherFirstAndLast(dataset)
                }
            }
        }
    }
    return 0
}
