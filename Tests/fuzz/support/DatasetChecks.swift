@testable import Datasets

/// Checks what every loaded data set promises: rows, features and targets that fit, finite values.
public func checkDataset(_ dataset: Dataset) {
    precondition(dataset.count > 0 && dataset.featureCount > 0 && dataset.targetCount > 0, "empty dataset accepted")
    precondition(dataset.targets.count == dataset.count * dataset.targetCount, "targets do not fit the rows")
    switch dataset.features {
    case let .bytes(values): precondition(values.count == dataset.count * dataset.featureCount, "feature bytes")
    case let .floats(values):
        precondition(values.count == dataset.count * dataset.featureCount, "feature floats")
        precondition(values.allSatisfy(\.isFinite), "non-finite feature accepted")
    }
    _ = dataset.location(ofRow: dataset.count - 1)
}

/// Gathers the first and the last row the way a training step does.
public func gatherFirstAndLast(_ dataset: Dataset) {
    var rows: [Int32] = [0, Int32(dataset.count - 1)]
    var features = [Float](repeating: 0, count: rows.count * dataset.featureCount)
    var targets = [Float](repeating: 0, count: rows.count * dataset.targetCount)
    rows.withUnsafeMutableBufferPointer { rows in
        features.withUnsafeMutableBufferPointer { features in
            targets.withUnsafeMutableBufferPointer {
                dataset.gather(rows: UnsafeBufferPointer(rows), features: features.baseAddress!, targets: $0.baseAddress!)
            }
        }
    }
}
