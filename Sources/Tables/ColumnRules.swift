import Formats
import Support

/// How a categorical column becomes network inputs (`data.categorical`).
public enum CategoricalEncoding: Equatable, Sendable {
    /// One 0/1 input per level.
    case oneHot
    /// A learned table of `dimension` values per level (PyTorch `nn.Embedding`), trained with the network.
    case embedding(dimension: Int)
}

/// How gaps in numeric columns are handled (`data.missing`).
public enum MissingStrategy: String, CaseIterable, Sendable {
    /// A gap stops the run with its file and line.
    case error
    /// Filled with the training rows' mean, median or zero (scikit-learn's `SimpleImputer` strategies).
    case mean, median, zero
}

/// The column rules of a config: which columns are categories and how they are encoded, what a gap is and how it
/// is filled, which column weighs the rows. They are fitted on the training rows into a `TableEncoding`.
public struct ColumnRules: Equatable, Sendable {
    /// Categorical columns in the order the config lists them, each with its encoding.
    public var categorical: [(name: String, encoding: CategoricalEncoding)]
    /// Levels seen fewer times than this in the training rows fold into the "other" level (nil: none fold).
    public var rareCategoryCount: Int?
    /// The cells that mean "no value" (trimmed text, compared exactly).
    public var missingValues: [String]
    public var missing: MissingStrategy
    /// One 0/1 input per numeric column that had gaps in the training rows.
    public var missingIndicator: Bool
    /// The column holding each row's weight in the loss (not a feature).
    public var sampleWeight: String?

    /// `data.missing_values` when the config does not say.
    public static let defaultMissingValues = ["", "NA", "NaN", "nan", "null", "?"]

    /// Rules as a config resolves them.
    public init(categorical: [(name: String, encoding: CategoricalEncoding)] = [], rareCategoryCount: Int? = nil,
                missingValues: [String] = ColumnRules.defaultMissingValues, missing: MissingStrategy = .error,
                missingIndicator: Bool = false, sampleWeight: String? = nil) {
        (self.categorical, self.rareCategoryCount, self.missingValues) = (categorical, rareCategoryCount, missingValues)
        (self.missing, self.missingIndicator, self.sampleWeight) = (missing, missingIndicator, sampleWeight)
    }

    public static func == (left: ColumnRules, right: ColumnRules) -> Bool {
        left.categorical.map(\.name) == right.categorical.map(\.name)
            && left.categorical.map(\.encoding) == right.categorical.map(\.encoding)
            && left.rareCategoryCount == right.rareCategoryCount && left.missingValues == right.missingValues
            && left.missing == right.missing && left.missingIndicator == right.missingIndicator
            && left.sampleWeight == right.sampleWeight
    }

    /// The columns a reader must keep as text: the categorical ones, and the targets when they may name classes.
    public func textColumns(targets: [String], classTargets: Bool) -> Set<String> {
        Set(categorical.map(\.name)).union(classTargets ? targets : [])
    }
}

extension TableEncoding {
    /// Fits `rules` on rows `rows` of `table` (the training rows): the levels of each categorical column (sorted by
    /// their UTF-8 bytes, rare ones folded), each numeric column's fill and whether it had gaps. With
    /// `classTargets`, a target column holding text gives the class names (sorted, from every row of `table`).
    /// A column the rules name that the table lacks is a `UserError` naming the config key.
    public static func fit(_ table: ColumnTable, rows: [Int], rules: ColumnRules, targets: [String],
                           classTargets: Bool) throws -> TableEncoding {
        let columns = "columns: " + table.names.map { quotedForMessage($0) }.joined(separator: ", ")
        for (name, _) in rules.categorical where table.index(of: name) == nil {
            throw UserError("data.categorical: no column \(quotedForMessage(name)) in \(table.source) (\(columns))")
        }
        if let weight = rules.sampleWeight {
            guard table.index(of: weight) != nil else {
                throw UserError("data.sample_weight: no column \(quotedForMessage(weight)) in \(table.source) (\(columns))")
            }
            if targets.contains(weight) || rules.categorical.contains(where: { $0.name == weight }) {
                throw UserError("data.sample_weight: \(quotedForMessage(weight)) is a target or categorical column; name a numeric column")
            }
        }
        for target in targets where rules.categorical.contains(where: { $0.name == target }) {
            throw UserError("data.categorical: \(quotedForMessage(target)) is a target (data.targets); a target's classes need no listing")
        }
        let missing = Set(rules.missingValues)
        var features: [FeatureColumn] = []
        for column in table.columns where !targets.contains(column.name) && column.name != rules.sampleWeight {
            if let encoding = rules.categorical.first(where: { $0.name == column.name })?.encoding {
                features.append(fitCategorical(column, rows: rows, encoding: encoding, missing: missing,
                                               rareCount: rules.rareCategoryCount))
            } else {
                features.append(try fitNumeric(column, rows: rows, rules: rules, missing: missing, table: table))
            }
        }
        guard !features.isEmpty else {
            throw UserError("\(table.headerLocation): the header has no feature columns besides "
                + (targets + (rules.sampleWeight.map { [$0] } ?? [])).map { quotedForMessage($0) }.joined(separator: ", "))
        }
        var classNames: [String]?
        if classTargets, targets.count == 1, let index = table.index(of: targets[0]) {
            let cells = table.columns[index].textCells()
            let named = cells.contains { cell in cell.map { !missing.contains($0) && CSV.number($0) == nil } ?? false }
            if named { classNames = sortedUnique(cells.compactMap { $0 }.filter { !missing.contains($0) }) }
        }
        return TableEncoding(columns: features, missingValues: rules.missingValues, missing: rules.missing, targets: targets,
                             sampleWeight: rules.sampleWeight, classNames: classNames)
    }

    private static func fitCategorical(_ column: ColumnTable.Column, rows: [Int], encoding: CategoricalEncoding,
                                       missing: Set<String>, rareCount: Int?) -> FeatureColumn {
        let cells = column.textCells()
        var counts: [String: Int] = [:]
        var gaps = 0
        for row in rows {
            guard let cell = cells[row], !missing.contains(cell) else { gaps += 1; continue }
            counts[cell, default: 0] += 1
        }
        let kept = counts.filter { $0.value >= (rareCount ?? 0) }.map(\.key)
        return FeatureColumn(name: column.name, kind: .categorical(CategoricalLevels(
            levels: sortedUnique(kept), missingLevel: gaps > 0, encoding: encoding,
            folded: sortedUnique(counts.keys.filter { !kept.contains($0) }))))
    }

    private static func fitNumeric(_ column: ColumnTable.Column, rows: [Int], rules: ColumnRules, missing: Set<String>,
                                   table: ColumnTable) throws -> FeatureColumn {
        guard case let .numbers(values) = column.cells else {
            throw UserError("\(table.headerLocation): column \(quotedForMessage(column.name)) holds text" + textHint)
        }
        var present: [Double] = []
        present.reserveCapacity(rows.count)
        for row in rows where !values[row].isNaN { present.append(Double(values[row])) }
        let gaps = rows.count - present.count
        var fill: Float?
        switch rules.missing {
        case .error: fill = nil
        case .zero: fill = 0
        case .mean: fill = present.isEmpty ? 0 : Float(present.reduce(0, +) / Double(present.count))
        case .median: fill = present.isEmpty ? 0 : Float(median(&present))
        }
        _ = missing
        return FeatureColumn(name: column.name, kind: .numeric(fill: fill, indicator: rules.missingIndicator && gaps > 0))
    }
}

/// The distinct strings of `values`, sorted by their UTF-8 bytes (the same order on every platform and rank).
func sortedUnique(_ values: [String]) -> [String] {
    Array(Set(values)).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
}

/// The median as NumPy computes it: the middle value, or the mean of the two middle values (reorders `values`).
func median(_ values: inout [Double]) -> Double {
    values.sort()
    let middle = values.count / 2
    return values.count % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2
}

/// `loss.class_weights: balanced` as scikit-learn computes it: rows / (classes × rows of the class), from the count of
/// each class in the training rows; a class with no row is a `UserError` naming the key.
public func balancedClassWeights(counts: [Int], classNames: [String]? = nil) throws -> [Float] {
    let total = counts.reduce(0, +)
    if let empty = counts.firstIndex(of: 0) {
        throw UserError("loss.class_weights: balanced needs a row of every class in the training data; class "
            + (classNames.map { quotedForMessage($0[empty]) } ?? String(empty)) + " has none")
    }
    return counts.map { Float(Double(total) / (Double(counts.count) * Double($0))) }
}
