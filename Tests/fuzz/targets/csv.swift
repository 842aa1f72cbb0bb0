// libFuzzer target: CSV bytes → CSVTable.parse (with and without a required label) → Dataset.fromCSV,
// standardization, label validation, limit and gather.
// Built by Tests/fuzz/run.sh together with Sources/Training/{UserError,Formats/FileIO,Data/CSV,Data/Dataset}.swift.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = fuzzBytes(data, size)
    for requireLabel in [true, false] {
        expectUserErrorOnly("CSVTable.parse(requireLabel: \(requireLabel))") {
            let table = try CSVTable.parse(bytes, path: "fuzz.csv", requireLabel: requireLabel)
            precondition(table.features.count == table.labels.count * table.featureNames.count
                         && table.lines.count == table.labels.count && !table.labels.isEmpty,
                         "CSVTable.parse: inconsistent table")
            precondition(table.features.allSatisfy(\.isFinite), "CSVTable.parse: non-finite feature")
            let dataset = Dataset.fromCSV(table, path: "fuzz.csv")
            _ = dataset.location(ofRow: dataset.count - 1)
            try dataset.applyNormalization(.standardize)
            try? dataset.validateClassLabels(classCount: 3)
            dataset.limit(to: 3)
            var rows = (0..<dataset.count).map { Int32($0) }
            var features = [Float](repeating: 0, count: rows.count * dataset.featureCount)
            var labels = [Float](repeating: 0, count: rows.count)
            rows.withUnsafeMutableBufferPointer { rows in
                features.withUnsafeMutableBufferPointer { out in
                    labels.withUnsafeMutableBufferPointer { dataset.gather(rows: UnsafeBufferPointer(rows), features: out.baseAddress!, labels: $0.baseAddress!) }
                }
            }
        }
    }
    return 0
}
