/// Datasets: data sets from every format, in memory or read by rows from their files: normalization, targets, the validation split.

import Distributed
import Formats
import Kernels
import Support
import Tables

/// How raw feature values are mapped to network inputs.
public enum Normalization: String, CaseIterable, Sendable {
    /// Raw values as they are.
    case none
    /// Divide by 255 (for byte-valued pixels).
    case scale
    /// Subtract the training mean and divide by the training standard deviation, per feature.
    case standardize
    /// Map each feature through its training quantiles to a standard normal (scikit-learn's QuantileTransformer).
    case quantile
}

/// How targets are mapped to what the network learns (`data.normalize_targets`).
public enum TargetNormalization: String, CaseIterable, Sendable {
    /// Targets as they are.
    case none
    /// Subtract the training mean and divide by the training standard deviation, per target (undone by `predict`).
    case standardize
}

/// An in-memory labelled dataset: `count` rows of `featureCount` raw features plus `targetCount` targets per row.
///
/// Raw features and targets are kept as loaded; normalization is applied on the fly by `gather`.
public final class Dataset {
    /// Raw feature storage, row-major, `count × featureCount` values.
    enum Features {
        /// Unsigned bytes, as read from IDX image files (or mapped from an npz's uncompressed uint8 array).
        case bytes(ByteStorage)
        /// Floats, as read from CSV files and numeric npz arrays.
        case floats([Float])
        /// Rows left in their files (`.npy`, an uncompressed `.npz` member, HDF5), read as batches need them.
        case file(FileRows)
    }

    /// Number of rows (examples).
    public private(set) var count: Int
    /// Number of input features per row.
    public let featureCount: Int
    /// Raw features, row-major.
    var features: Features
    /// The targets, row-major `count × targetCount`: a class index (classification), 0 or 1 per label (multi-label)
    /// or values (regression).
    private(set) var targets: [Float]
    /// Targets per row.
    public let targetCount: Int
    /// Names of the targets: the CSV or Parquet target columns, `label` for IDX, `y` or `y_0`, `y_1`, ... for npz, npy
    /// and HDF5 unless named.
    let targetNames: [String]
    /// The file the features came from (CSV path, IDX images path, npz path, ...; for shards, the first).
    public let source: String
    /// Names of the feature columns (CSV header or Parquet schema order); empty for IDX, npz, npy and HDF5 data.
    let featureNames: [String]
    /// How raw rows of a table became these features (nil for IDX and npz data without gaps).
    public internal(set) var encoding: TableEncoding?
    /// Which features normalization applies to (nil: all); one-hot inputs, gap indicators and embedding codes pass.
    var normalizable: [Bool]?
    /// Each row's sample weight (`data.sample_weight`), nil when rows are not weighted.
    var sampleWeights: [Float]?
    /// Each row's weight in the loss: sample weight × its class's weight; nil when every row weighs 1.
    public internal(set) var rowWeights: [Float]?
    /// Per-feature quantiles of `quantile` normalization (empty for a feature it does not apply to).
    var quantiles: [FeatureQuantiles] = []
    /// Cells of categorical columns that were no training level and went to "other", per column (tables only).
    public internal(set) var unseen: [(column: String, count: Int)] = []

    /// The normalization currently applied by `gather`.
    var normalization: Normalization = .none
    /// Per-feature value subtracted first: normalized = (raw − offset) × scale.
    var offset: [Float]
    /// Per-feature factor applied after the offset: normalized = (raw − offset) × scale (1/255, or 1/std).
    var scale: [Float]

    /// The target normalization currently applied by `gather`: target' = (target − targetMean) / targetStandardDeviation.
    var targetNormalization: TargetNormalization = .none
    /// Per-target mean subtracted by `standardize` (0 otherwise).
    public internal(set) var targetMean: [Float]
    /// Per-target standard deviation divided by `standardize` (1 otherwise).
    public internal(set) var targetStandardDeviation: [Float]
    /// 1 / targetStandardDeviation, what `gather` multiplies by.
    var targetScale: [Float]

    enum Origin {
        case csv(path: String, lines: [Int])
        case idx(labelsPath: String)
        /// Rows of one or more files in order (npz, npy, HDF5, Parquet): file i holds rows `starts[i]...` on.
        case rows(paths: [String], starts: [Int])
    }
    private(set) var origin: Origin
    /// The loaded file's row of each row when this dataset is a subset of it (nil: row i is the file's row i).
    var fileRows: [Int]?

    init(count: Int, featureCount: Int, features: Features, targets: [Float], targetNames: [String], source: String,
         featureNames: [String], origin: Origin) {
        precondition(!targetNames.isEmpty && targets.count == count * targetNames.count, "Dataset: targets do not fit the rows")
        self.count = count
        self.featureCount = featureCount
        self.features = features
        self.targets = targets
        targetCount = targetNames.count
        self.targetNames = targetNames
        self.source = source
        self.featureNames = featureNames
        self.origin = origin
        offset = [Float](repeating: 0, count: featureCount)
        scale = [Float](repeating: 1, count: featureCount)
        targetMean = [Float](repeating: 0, count: targetNames.count)
        targetStandardDeviation = [Float](repeating: 1, count: targetNames.count)
        targetScale = targetStandardDeviation
    }

    /// Makes a dataset from float features and `targetCount` targets per row held in memory (tests, generated data).
    convenience init(features: [Float], targets: [Float], featureCount: Int, targetCount: Int = 1,
                            source: String = "<memory>") throws {
        let rows = targets.count / max(targetCount, 1)
        guard featureCount > 0, targetCount > 0, targets.count == rows * targetCount, features.count == rows * featureCount else {
            throw UserError("\(source): \(features.count) feature values and \(targets.count) targets do not form rows of "
                + "\(featureCount) features and \(targetCount) targets")
        }
        self.init(count: rows, featureCount: featureCount, features: .floats(features), targets: targets,
                  targetNames: defaultTargetNames(count: targetCount, base: "label"), source: source, featureNames: [],
                  origin: .idx(labelsPath: source))
    }

    // MARK: - Loading

    /// Loads IDX images and labels for a prefix such as `data/train` (see `IDX.resolvePrefix`).
    static func loadIDX(prefix: String) throws -> Dataset {
        let paths = try IDX.resolvePrefix(prefix)
        return try fromIDX(images: IDX.read(path: paths.images), labels: IDX.read(path: paths.labels),
                           imagesPath: paths.images, labelsPath: paths.labels)
    }

    /// Makes a dataset from parsed IDX images and labels; a shape mismatch is a `UserError` naming the files.
    static func fromIDX(images: IDXArray, labels: IDXArray, imagesPath: String, labelsPath: String) throws -> Dataset {
        guard labels.dimensions.count == 1 else {
            throw UserError("\(labelsPath): labels file should have 1 dimension, has \(labels.dimensions.count)")
        }
        let itemCount = images.dimensions[0]
        guard itemCount == labels.dimensions[0] else {
            throw UserError("\(imagesPath) has \(itemCount) images but \(labelsPath) has \(labels.dimensions[0]) labels")
        }
        guard itemCount > 0 else { throw UserError("\(imagesPath): contains no images") }
        // bytes.count is the product of all dimensions (IDX.parse checked it fits), so with itemCount > 0 the
        // row width is bytes.count / itemCount, computed without re-multiplying the dimensions.
        let width = images.bytes.count / itemCount
        guard width > 0 else { throw UserError("\(imagesPath): images have zero size (dimensions \(images.dimensions))") }
        return Dataset(count: itemCount, featureCount: width, features: .bytes(ByteStorage(images.bytes)),
                       targets: labels.bytes.map { Float($0) }, targetNames: ["label"], source: imagesPath, featureNames: [],
                       origin: .idx(labelsPath: labelsPath))
    }

    /// Keeps only the first `maximumCount` rows (e.g. a `train_limit` for quick runs); larger limits change nothing.
    public func limit(to maximumCount: Int) {
        let kept = max(0, maximumCount)
        guard kept < count else { return }
        // Swap each array out before trimming so it is uniquely referenced and shrinks in place.
        switch features {
        case let .bytes(values):
            features = .bytes(values.truncated(to: kept * featureCount))
        case var .floats(values):
            features = .floats([])
            values.removeSubrange((kept * featureCount)...)
            features = .floats(values)
        case .file:
            break // the first `kept` rows of the file are read, the rest never
        }
        targets.removeSubrange((kept * targetCount)...)
        sampleWeights?.removeSubrange(kept...)
        rowWeights?.removeSubrange(kept...)
        if fileRows != nil {
            fileRows?.removeSubrange(kept...)
        } else if case .csv(let path, var lines) = origin {
            origin = .idx(labelsPath: path)
            lines.removeSubrange(kept...)
            origin = .csv(path: path, lines: lines)
        }
        count = kept
    }

    /// A new dataset of the given rows, in that order (raw features and targets copied; errors still name file rows).
    func subset(rows: [Int]) -> Dataset {
        precondition(rows.allSatisfy { $0 >= 0 && $0 < count }, "Dataset.subset: row outside 0..<\(count)")
        func pick<Value>(_ values: UnsafeBufferPointer<Value>, width: Int) -> [Value] {
            var picked: [Value] = []
            picked.reserveCapacity(rows.count * width)
            for row in rows { picked.append(contentsOf: values[(row * width)..<((row + 1) * width)]) }
            return picked
        }
        let picked: Features
        switch features {
        case let .bytes(values): picked = .bytes(ByteStorage(values.withUnsafeBufferPointer { pick($0, width: featureCount) }))
        case let .floats(values): picked = .floats(values.withUnsafeBufferPointer { pick($0, width: featureCount) })
        case .file: picked = features // shared: `fileRows` says which file row each row is
        }
        let subset = Dataset(count: rows.count, featureCount: featureCount, features: picked,
                             targets: targets.withUnsafeBufferPointer { pick($0, width: targetCount) }, targetNames: targetNames,
                             source: source, featureNames: featureNames, origin: origin)
        subset.fileRows = rows.map { fileRows?[$0] ?? $0 }
        subset.encoding = encoding
        subset.normalizable = normalizable
        subset.sampleWeights = sampleWeights.map { weights in rows.map { weights[$0] } }
        subset.rowWeights = rowWeights.map { weights in rows.map { weights[$0] } }
        return subset
    }

    // MARK: - Locations and validation

    /// Where a row came from, for error messages: "path:LINE" for CSV, "labels-file (item N)" (0-based) for IDX.
    func location(ofRow subsetRow: Int) -> String {
        let row = fileRows.map { subsetRow >= 0 && subsetRow < $0.count ? $0[subsetRow] : subsetRow } ?? subsetRow
        switch origin {
        case let .csv(path, lines):
            guard row >= 0, row < lines.count else { return "\(path) (row \(row))" }
            return "\(path):\(lines[row])"
        case let .idx(labelsPath):
            return "\(labelsPath) (item \(row))"
        case let .rows(paths, starts):
            let file = max(0, (starts.lastIndex { $0 <= row } ?? 0))
            return "\(paths[file]) (row \(row - starts[file]))"
        }
    }

    /// Checks every label is an integer class index in 0..<classCount (one target per row).
    public func validateClassLabels(classCount: Int) throws {
        precondition(targetCount == 1, "class labels are one target per row")
        for (row, label) in targets.enumerated() {
            if !(label >= 0 && label < Float(classCount) && label == label.rounded(.towardZero)) {
                let shown = label.isFinite && label == label.rounded() && abs(label) < 1e15 ? String(Int64(label)) : "\(label)"
                throw UserError("\(location(ofRow: row)): label \(shown) outside 0..<\(classCount) (the output layer has \(classCount) units)")
            }
        }
    }

    // MARK: - Batches

    /// Writes one row's `targetCount` targets as `gather` delivers them: (target − mean) × 1/deviation.
    @inline(__always)
    private func copyTargets(_ source: UnsafePointer<Float>, to destination: UnsafeMutablePointer<Float>) {
        for target in 0..<targetCount {
            destination[target] = (source[target] - targetMean[target]) * targetScale[target]
        }
    }

    /// Writes the normalized features (`rows.count × featureCount`, row-major) and targets (`rows.count × targetCount`)
    /// of the given rows.
    /// Allocation-free; with `threads > 1` large batches are split across threads. Row indices must be in 0..<count.
    public func gather(rows: UnsafeBufferPointer<Int32>, features output: UnsafeMutablePointer<Float>,
                       targets targetOutput: UnsafeMutablePointer<Float>, threads: Int = 1) {
        let parts = max(1, min(threads, rows.count, rows.count * featureCount / minimumElementsPerThread))
        parallelFor(count: parts, threads: parts,
                    GatherPart(dataset: self, rows: rows, parts: parts, output: output, targetOutput: targetOutput))
    }

    fileprivate func gatherRange<V: FloatVector>(_ rows: UnsafeBufferPointer<Int32>, _ range: Range<Int>,
                                                 _ output: UnsafeMutablePointer<Float>,
                                                 _ targetOutput: UnsafeMutablePointer<Float>, as _: V.Type) {
        let width = featureCount
        offset.withUnsafeBufferPointer { offsets in
            scale.withUnsafeBufferPointer { multipliers in
                targets.withUnsafeBufferPointer { targetValues in
                    guard let offsetBase = offsets.baseAddress, let multiplierBase = multipliers.baseAddress else { return }
                    // One loop for both storage types; `convert` writes row `row` of the features to `destination`.
                    func gatherRows(_ convert: (_ row: Int, _ destination: UnsafeMutablePointer<Float>) -> Void) {
                        for index in range {
                            let row = Int(rows[index])
                            precondition(row >= 0 && row < count, "Dataset.gather: row \(row) outside 0..<\(count)")
                            convert(row, output + index * width)
                            copyTargets(targetValues.baseAddress! + row * targetCount, to: targetOutput + index * targetCount)
                        }
                    }
                    switch features {
                    case let .bytes(values):
                        values.withUnsafeBufferPointer { raw in
                            guard let rawBase = raw.baseAddress else { return }
                            gatherRows { convertRow(rawBase + $0 * width, width, offsetBase, multiplierBase, $1, as: V.self) }
                        }
                    case let .floats(values):
                        values.withUnsafeBufferPointer { raw in
                            guard let rawBase = raw.baseAddress else { return }
                            gatherRows { convertRow(rawBase + $0 * width, width, offsetBase, multiplierBase, $1, as: V.self) }
                        }
                    case let .file(file):
                        gatherRows { row, destination in
                            let stored = storageRow(row)
                            do { try file.read(stored..<(stored + 1), into: destination) } catch {
                                // The rows were checked when the run began, so the file changed under it: NaN inputs
                                // make the step's loss non-finite and the ranks stop together, as on divergence.
                                Diagnostics.warning("\(error)")
                                destination.update(repeating: .nan, count: width)
                            }
                            convertRow(UnsafePointer(destination), width, offsetBase, multiplierBase, destination, as: V.self)
                        }
                    }
                }
            }
        }
    }
}

// Shape: output[j] = (input[j] − offset[j]) × multiplier[j] for j in 0..<width, a vector of the kernel variant's
// width at a time (lane-wise, so the bits do not depend on the width).
@inline(__always)
private func convertRow<V: FloatVector>(_ input: UnsafePointer<UInt8>, _ width: Int, _ offset: UnsafePointer<Float>,
                                        _ multiplier: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>,
                                        as _: V.Type) {
    forEachVector(in: 0..<width, as: V.self) { j, lanes in
        let values = V(converting: lanes.load(input + j) as V.Bytes)
        let shift: V = lanes.load(offset + j), factor: V = lanes.load(multiplier + j)
        lanes.store((values - shift) * factor, output + j)
    }
}

@inline(__always)
private func convertRow<V: FloatVector>(_ input: UnsafePointer<Float>, _ width: Int, _ offset: UnsafePointer<Float>,
                                        _ multiplier: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>,
                                        as _: V.Type) {
    forEachVector(in: 0..<width, as: V.self) { j, lanes in
        let values: V = lanes.load(input + j), shift: V = lanes.load(offset + j), factor: V = lanes.load(multiplier + j)
        lanes.store((values - shift) * factor, output + j)
    }
}

/// One thread's share of `Dataset.gather`: a contiguous run of the batch's rows.
private struct GatherPart: ParallelJob {
    let dataset: Dataset
    let rows: UnsafeBufferPointer<Int32>
    let parts: Int
    let output: UnsafeMutablePointer<Float>
    let targetOutput: UnsafeMutablePointer<Float>

    func perform(_ part: Int) {
        KernelVariant.active.run(GatherRows(part: self, range: (rows.count * part / parts)..<(rows.count * (part + 1) / parts)))
    }
}

/// Rows `range` of a gather, with the kernel variant's vectors.
private struct GatherRows: VectorJob {
    let part: GatherPart
    let range: Range<Int>

    func perform<V: FloatVector>(as _: V.Type) {
        part.dataset.gatherRange(part.rows, range, part.output, part.targetOutput, as: V.self)
    }
}
