/// StarterConfig: `plexus init`, a first config for a table, each choice commented, that `plexus train` runs as it is.
import Config
import Datasets
import Formats
import Parquet
import Support
import Tables

/// `plexus init`'s config.
public enum StarterConfig {
    /// The starter config for the data at `data` (CSV, Parquet or npz) with `targets` as the target columns (npz: names
    /// for y's columns), as YAML with a comment on each choice.
    public static func yaml(data: String, targets requested: [String]) throws -> String {
        let location = DataLocation.path(data)
        let format = DataFormat(impliedBy: location)
        guard [.csv, .parquet, .npz].contains(format) else {
            throw UserError("\(data): plexus init reads a CSV, Parquet or .npz file")
        }
        let targets = requested.isEmpty ? (format == .npz ? [] : ["label"]) : requested
        let loaded = try LoadedData.load(location, format: format, targets: format == .npz && targets.isEmpty ? nil : targets,
                                         rules: ColumnRules(missing: .median))
        let table = try loaded.asTable
        let missing = Set(ColumnRules.defaultMissingValues)
        let targetNames = format == .npz ? table.names.filter { !$0.hasPrefix("x_") } : targets
        var categorical: [String] = [], gaps: [String] = []
        var featureCount = 0
        for column in table.columns where !targetNames.contains(column.name) {
            let texts = column.nonNumbers.compactMap { $0.text }.filter { !missing.contains($0) }
            if !texts.isEmpty {
                categorical.append(column.name)
                featureCount += Set(column.textCells().compactMap { $0 }).count
            } else {
                featureCount += 1
                if !column.nonNumbers.isEmpty { gaps.append(column.name) }
            }
        }
        let task = try StarterTask(table: table, targets: targetNames, missing: missing)
        let hidden = min(256, max(32, 2 * featureCount))
        let batch = min(256, max(16, table.rowCount / 50))
        var lines = [
            "# A starter config for \(data), written by plexus init; plexus train runs it as it is.",
            "seed: 0",
            "data:",
            "  train: \(location.yamlText)",
        ]
        if format != .npz || !requested.isEmpty {
            lines.append("  targets: [" + targetNames.map(quotedString).joined(separator: ", ") + "]   # \(task.comment)")
        }
        if !categorical.isEmpty {
            lines.append("  categorical: [" + categorical.map(quotedString).joined(separator: ", ") + "]   # text columns: one "
                + "0/1 input per level seen in training, unseen levels go to \"other\"")
        }
        if !gaps.isEmpty {
            lines.append("  missing: median           # gaps in " + gaps.joined(separator: ", ") + " take the training rows' median")
            lines.append("  missing_indicator: true   # and a 0/1 input saying the value was missing")
        }
        lines += [
            "  normalize: standardize     # numeric features minus the training mean, over the standard deviation",
        ]
        if case .regression = task {
            lines.append("  normalize_targets: standardize   # learn standardized targets; metrics and predict use the original units")
        }
        lines += [
            "  validation_fraction: 0.2   # hold out a fifth of the rows to watch for overfitting",
            "model:",
            "  layers:                    # two hidden layers sized to the \(featureCount) inputs",
            "    - {units: \(hidden), activation: relu}",
            "    - {units: \(hidden), activation: relu}",
            "    - {units: \(task.outputs), activation: identity}   # \(task.outputComment)",
            "loss: \(task.loss)",
            "optimizer: {name: adam, lr: 0.001}",
            "training:",
            "  epochs: 200                # an upper bound: early stopping ends sooner",
            "  batch_size: \(batch)",
            "  early_stopping: {metric: val_loss, patience: 10}   # stop after 10 epochs without a better validation loss",
        ]
        return lines.joined(separator: "\n") + "\n"
    }
}

/// What the target columns of a table say is to be learned.
enum StarterTask {
    case classes(names: [String])
    case labels(count: Int)
    case regression(count: Int)

    /// Classes when a single target holds text or few whole numbers ≥ 0, 0/1 labels when several targets are all
    /// 0 or 1, else regression.
    init(table: ColumnTable, targets: [String], missing: Set<String>) throws {
        let columns = try targets.map { name -> ColumnTable.Column in
            guard let index = table.index(of: name) else {
                throw UserError("\(table.headerLocation): no \(quotedForMessage(name)) column (columns are: "
                    + table.names.map { quotedForMessage($0) }.joined(separator: ", ") + ")")
            }
            return table.columns[index]
        }
        let cells = columns.map { $0.textCells().compactMap { $0 }.filter { !missing.contains($0) } }
        let numbers = cells.map { $0.compactMap { CSV.number($0) } }
        if columns.count == 1 {
            let wholes = numbers[0].count == cells[0].count && numbers[0].allSatisfy { $0 >= 0 && $0 == $0.rounded() }
            if numbers[0].count < cells[0].count {
                self = .classes(names: sortedUnique(cells[0]))
                return
            }
            if wholes, let largest = numbers[0].max(), largest < 50, Set(numbers[0]).count <= 20 {
                self = .classes(names: (0...Int(largest)).map(String.init))
                return
            }
            self = .regression(count: 1)
            return
        }
        if numbers.allSatisfy({ $0.allSatisfy { $0 == 0 || $0 == 1 } }) {
            self = .labels(count: columns.count)
        } else {
            self = .regression(count: columns.count)
        }
    }

    var outputs: Int {
        switch self {
        case let .classes(names): return max(2, names.count)
        case let .labels(count), let .regression(count): return count
        }
    }

    var loss: String {
        switch self {
        case .classes: return "cross_entropy"
        case .labels: return "binary_cross_entropy"
        case .regression: return "mse"
        }
    }

    var comment: String {
        switch self {
        case let .classes(names): return "\(names.count) classes"
        case let .labels(count): return "\(count) 0/1 labels"
        case let .regression(count): return count == 1 ? "a number to predict" : "\(count) numbers to predict"
        }
    }

    var outputComment: String {
        switch self {
        case .classes: return "one logit per class"
        case .labels: return "one logit per label"
        case .regression: return "one output per target"
        }
    }
}

/// The distinct strings, sorted by their UTF-8 bytes.
private func sortedUnique(_ values: [String]) -> [String] {
    Array(Set(values)).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
}
