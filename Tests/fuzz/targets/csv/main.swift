// Fuzz target: CSV bytes → CSVTable.parse (one `label` target or two target columns, required or not) →
// Dataset.fromCSV, standardization of features and targets, label validation, limit and gather.
@testable import Datasets
@testable import Formats
import FuzzSupport

runFuzzer { data, size in
    let bytes = fuzzBytes(data, size)
    for (targets, requireTargets) in [(["label"], true), (["label"], false), (["label", "b"], true), (["a", "label"], false)] {
        expectUserErrorOnly("CSVTable.parse(targets: \(targets), requireTargets: \(requireTargets))") {
            let table = try CSVTable.parse(bytes, path: "fuzz.csv", targets: targets, requireTargets: requireTargets)
            precondition(table.features.count == table.lines.count * table.featureNames.count
                         && table.targets.count == table.lines.count * targets.count && !table.lines.isEmpty,
                         "CSVTable.parse: inconsistent table")
            precondition(table.features.allSatisfy(\.isFinite), "CSVTable.parse: non-finite feature")
            let dataset = Dataset.fromCSV(table, path: "fuzz.csv")
            _ = dataset.location(ofRow: dataset.count - 1)
            try dataset.applyNormalization(.standardize)
            try dataset.applyTargetNormalization(.standardize)
            if targets.count == 1 { try? dataset.validateClassLabels(classCount: 3) } else { try? dataset.validateBinaryTargets() }
            dataset.limit(to: 3)
            gatherFirstAndLast(dataset)
        }
    }
    return 0
}
