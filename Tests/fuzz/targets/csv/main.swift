// Fuzz target: CSV bytes → CSV.read and the default column rules (one `label` target or two target columns,
// required or not) via Dataset.fromCSV, standardization of features and targets, label validation, limit and gather.
@testable import Datasets
@testable import Formats
import FuzzSupport

runFuzzer { data, size in
    let bytes = fuzzBytes(data, size)
    for (targets, requireTargets) in [(["label"], true), (["label"], false), (["label", "b"], true), (["a", "label"], false)] {
        expectUserErrorOnly("CSV.read (targets: \(targets), requireTargets: \(requireTargets))") {
            let dataset = try Dataset.fromCSV(bytes, path: "fuzz.csv", targets: targets, requireTargets: requireTargets)
            precondition(dataset.count > 0 && dataset.targets.count == dataset.count * targets.count, "Dataset.fromCSV: inconsistent rows")
            if case let .floats(features) = dataset.features {
                precondition(features.allSatisfy(\.isFinite), "Dataset.fromCSV: non-finite feature")
            }
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
