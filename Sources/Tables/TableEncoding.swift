/// Tables: the column rules fitted on the training rows (categories, gaps and fills, weights, class names) and the quantile transform.

import Formats
import Support

/// The levels of a categorical column as fitted on the training rows. Its inputs (one-hot) or codes (embedding)
/// are laid out as: the levels in order, then the missing level when the training rows had gaps, then "other"
/// (rare levels, and levels never seen in training).
public struct CategoricalLevels: Equatable, Sendable {
    public var levels: [String]
    /// Whether a gap is a level of its own (the training rows had gaps in this column).
    public var missingLevel: Bool
    public var encoding: CategoricalEncoding
    /// The training values rarer than `data.rare_category_count`, sorted: they are "other" but not unseen.
    public var folded: [String]

    /// Levels as fitted, or as a model file records them.
    public init(levels: [String], missingLevel: Bool, encoding: CategoricalEncoding, folded: [String] = []) {
        (self.levels, self.missingLevel, self.encoding, self.folded) = (levels, missingLevel, encoding, folded)
    }

    /// How many codes the column has: its levels, the missing level if any, and "other".
    public var codeCount: Int { levels.count + (missingLevel ? 1 : 0) + 1 }
    /// The code of the missing level (when there is one).
    public var missingCode: Int { levels.count }
    /// The code of "other".
    public var otherCode: Int { codeCount - 1 }

    /// The code of `cell` (nil or a missing value: the missing level, else "other"); `known` says whether the cell was
    /// a level, a gap with a level of its own, or neither.
    func code(of cell: String?, missing: Set<String>, index: [String: Int]) -> (code: Int, known: Bool) {
        guard let cell, !missing.contains(cell) else { return missingLevel ? (missingCode, true) : (otherCode, false) }
        if let code = index[cell] { return (code, true) }
        return (otherCode, folded.contains(cell))
    }
}

/// One feature column of a fitted table encoding.
public struct FeatureColumn: Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        /// Numbers; gaps take `fill` (nil: a gap is an error) and, with `indicator`, set a 0/1 input of their own.
        case numeric(fill: Float?, indicator: Bool)
        case categorical(CategoricalLevels)
    }
    public var name: String
    public var kind: Kind

    /// A feature column named `name`.
    public init(name: String, kind: Kind) { (self.name, self.kind) = (name, kind) }
}

/// The column rules fitted on the training rows: everything needed to turn raw rows of any file with the training
/// file's columns into network inputs, as the model file records it.
///
/// Inputs, in order: each feature column in file order (a numeric column one value, a one-hot column one 0/1 per
/// code), then one 0/1 gap indicator per numeric column with `indicator`, then one code per embedding column.
public struct TableEncoding: Equatable, Sendable {
    public var columns: [FeatureColumn]
    public var missingValues: [String]
    public var missing: MissingStrategy
    public var targets: [String]
    public var sampleWeight: String?
    /// The classes of a class column that held text, sorted; nil when classes are integer indices.
    public var classNames: [String]?

    /// An encoding with these parts (as fitted, or as a model file records it).
    public init(columns: [FeatureColumn], missingValues: [String], missing: MissingStrategy, targets: [String],
                sampleWeight: String?, classNames: [String]?) {
        (self.columns, self.missingValues, self.missing, self.targets) = (columns, missingValues, missing, targets)
        (self.sampleWeight, self.classNames) = (sampleWeight, classNames)
    }

    /// The rules a reader needs to read new rows for this encoding: its categorical columns (as text), what a gap
    /// is, whether gaps are filled, the weight column.
    public var readingRules: ColumnRules {
        ColumnRules(categorical: columns.compactMap { column in
            guard case let .categorical(levels) = column.kind else { return nil }
            return (column.name, levels.encoding)
        }, missingValues: missingValues, missing: missing,
        missingIndicator: !indicatorColumns.isEmpty, sampleWeight: sampleWeight)
    }

    /// Whether the encoding only passes numbers through: no categories, fills, indicators, weights or class names
    /// (what the default rules give a numeric table; such data needs no encoding recorded).
    public var isPlain: Bool {
        sampleWeight == nil && classNames == nil && columns.allSatisfy { $0.kind == .numeric(fill: nil, indicator: false) }
    }

    /// The numeric columns with a gap indicator.
    var indicatorColumns: [Int] {
        columns.indices.filter { if case .numeric(_, true) = columns[$0].kind { return true } else { return false } }
    }

    /// The embedding columns with their code count and dimension, in input order.
    public var embeddings: [(name: String, levels: Int, dimension: Int)] {
        columns.compactMap { column in
            guard case let .categorical(levels) = column.kind, case let .embedding(dimension) = levels.encoding else { return nil }
            return (column.name, levels.codeCount, dimension)
        }
    }

    /// Inputs per row.
    public var featureCount: Int { featureLayout.count }

    /// What each input is: true for an input normalization applies to (a numeric column), false for one-hot
    /// inputs, gap indicators and embedding codes.
    public var normalizable: [Bool] { featureLayout.map { $0 } }

    private var featureLayout: [Bool] {
        var layout: [Bool] = []
        for column in columns {
            switch column.kind {
            case .numeric: layout.append(true)
            case let .categorical(levels) where levels.encoding == .oneHot:
                layout += [Bool](repeating: false, count: levels.codeCount)
            case .categorical: break
            }
        }
        return layout + [Bool](repeating: false, count: indicatorColumns.count + embeddings.count)
    }

    /// The names of the inputs, for messages: a column's name, `column=level` for one-hot inputs.
    public var featureNames: [String] {
        var names: [String] = []
        for column in columns {
            switch column.kind {
            case .numeric: names.append(column.name)
            case let .categorical(levels) where levels.encoding == .oneHot:
                names += levels.levels.map { "\(column.name)=\($0)" } + (levels.missingLevel ? ["\(column.name)=(missing)"] : [])
                    + ["\(column.name)=(other)"]
            case .categorical: break
            }
        }
        return names + indicatorColumns.map { "\(columns[$0].name) missing" } + embeddings.map { "\($0.name) code" }
    }
}

/// Rows of a table as network inputs: `features` [rows × featureCount], the targets, the sample weights.
public struct EncodedRows {
    public var features: [Float]
    /// [rows × targets]: class indices (by name or number), 0/1 labels or values.
    public var targets: [Float]
    /// Each row's sample weight (nil without `data.sample_weight`, or when a prediction input lacks its column).
    public var weights: [Float]?
    /// The file line of each row (CSV), else nil.
    public var lines: [Int]?
    /// The table's row of each encoded row.
    public var rows: [Int]
    /// Cells that were neither a training level nor a gap with a level of its own, per categorical column: they
    /// went to "other".
    public var unseen: [(column: String, count: Int)]
}

extension TableEncoding {
    /// Encodes rows `rows` of `table` (default: all). Every cell is checked: a text value in a numeric column, a gap
    /// without a fill, a missing or unknown class, a sample weight below 0 is a `UserError` naming file:line. With
    /// `requireTargets: false` (prediction inputs) the target and weight columns may be absent (targets are then 0;
    /// a target that is not a number is NaN).
    public func encode(_ table: ColumnTable, rows selected: [Int]? = nil, requireTargets: Bool = true) throws -> EncodedRows {
        let rows = selected ?? Array(0..<table.rowCount)
        let missing = Set(missingValues)
        func column(_ name: String, _ what: String) throws -> ColumnTable.Column? {
            if let index = table.index(of: name) { return table.columns[index] }
            guard requireTargets || what == "feature" else { return nil }
            throw UserError("\(table.headerLocation): no \(quotedForMessage(name)) column in the header (the model's \(what)); "
                + "columns are: " + table.names.map { quotedForMessage($0) }.joined(separator: ", "))
        }
        let width = featureCount
        var features = [Float](repeating: 0, count: rows.count * width)
        var offset = 0
        var indicatorOffset = width - indicatorColumns.count - embeddings.count
        var codeOffset = width - embeddings.count
        var unseen: [(column: String, count: Int)] = []
        for feature in columns {
            let cells = try column(feature.name, "feature")!
            switch feature.kind {
            case let .numeric(fill, indicator):
                try encodeNumbers(cells, rows: rows, fill: fill, missing: missing, table: table) { index, value, gap in
                    features[index * width + offset] = value
                    if indicator && gap { features[index * width + indicatorOffset] = 1 }
                }
                offset += 1
                if indicator { indicatorOffset += 1 }
            case let .categorical(levels):
                var index: [String: Int] = [:]
                for (code, level) in levels.levels.enumerated() { index[level] = code }
                let texts = cells.textCells()
                var unknown = 0
                let oneHot = levels.encoding == .oneHot
                for (position, row) in rows.enumerated() {
                    let (code, known) = levels.code(of: texts[row], missing: missing, index: index)
                    if !known { unknown += 1 }
                    if oneHot { features[position * width + offset + code] = 1 } else { features[position * width + codeOffset] = Float(code) }
                }
                if unknown > 0 { unseen.append((feature.name, unknown)) }
                if oneHot { offset += levels.codeCount } else { codeOffset += 1 }
            }
        }
        var targetValues = [Float](repeating: 0, count: rows.count * targets.count)
        for (slot, name) in targets.enumerated() {
            guard let cells = try column(name, "target") else { continue }
            try encodeTargets(cells, slot: slot, rows: rows, into: &targetValues, missing: missing, table: table,
                              strict: requireTargets)
        }
        var weights: [Float]?
        if let name = sampleWeight, let cells = try column(name, "sample weight (data.sample_weight)") {
            var values = [Float](repeating: 0, count: rows.count)
            try encodeNumbers(cells, rows: rows, fill: nil, missing: missing, table: table, what: "sample weight") { index, value, _ in
                values[index] = value
            }
            if let negative = values.firstIndex(where: { $0 < 0 }) {
                throw UserError("\(table.location(ofRow: rows[negative])): sample weight \(values[negative]) in column "
                    + "\(quotedForMessage(name)) is below 0 (data.sample_weight)")
            }
            weights = values
        }
        return EncodedRows(features: features, targets: targetValues, weights: weights,
                           lines: table.lines.map { lines in rows.map { lines[$0] } }, rows: rows, unseen: unseen)
    }

    /// Calls `store(position, value, wasGap)` for each selected row of a numeric column, a gap taking `fill`.
    private func encodeNumbers(_ column: ColumnTable.Column, rows: [Int], fill: Float?, missing: Set<String>, table: ColumnTable,
                               what: String = "value", _ store: (Int, Float, Bool) -> Void) throws {
        guard case let .numbers(values) = column.cells else {
            throw UserError("\(table.headerLocation): column \(quotedForMessage(column.name)) holds text" + textHint)
        }
        var texts: [Int: String?] = [:]
        for cell in column.nonNumbers { texts[cell.row] = cell.text }
        for (position, row) in rows.enumerated() {
            let value = values[row]
            if !value.isNaN { store(position, value, false); continue }
            let text = texts[row] ?? nil
            if let text, !missing.contains(text) {
                let problem = nonNumberProblem(text)
                throw UserError("\(table.location(ofRow: row)): \(problem) value \(quotedForMessage(text)) in column "
                    + quotedForMessage(column.name) + (what == "value" && problem == "non-numeric" ? textHint : ""))
            }
            guard let fill else {
                throw UserError("\(table.location(ofRow: row)): missing \(what) in column \(quotedForMessage(column.name))"
                    + (what == "value" ? " (set data.missing to mean, median or zero to fill gaps)" : ""))
            }
            store(position, fill, true)
        }
    }

    private func encodeTargets(_ column: ColumnTable.Column, slot: Int, rows: [Int], into values: inout [Float],
                               missing: Set<String>, table: ColumnTable, strict: Bool) throws {
        var numbers: [Float]?
        var texts: [String?] = []
        if case let .numbers(values) = column.cells, classNames == nil {
            numbers = values
            texts = [String?](repeating: nil, count: values.count)
            for cell in column.nonNumbers { texts[cell.row] = cell.text }
        } else {
            texts = column.textCells()
        }
        var classIndex: [String: Int] = [:]
        for (index, name) in (classNames ?? []).enumerated() { classIndex[name] = index }
        for (position, row) in rows.enumerated() {
            let target = position * targets.count + slot
            if let numbers, !numbers[row].isNaN { values[target] = numbers[row]; continue }
            guard let text = texts[row], !missing.contains(text) else {
                guard strict else { values[target] = .nan; continue }
                throw UserError("\(table.location(ofRow: row)): missing target in column \(quotedForMessage(column.name)) "
                    + "(every row needs its target)")
            }
            if let classNames {
                if let index = classIndex[text] { values[target] = Float(index); continue }
                guard strict else { values[target] = .nan; continue }
                throw UserError("\(table.location(ofRow: row)): class \(quotedForMessage(text)) in column "
                    + "\(quotedForMessage(column.name)) is not among the training data's classes ("
                    + classNames.prefix(10).map { quotedForMessage($0) }.joined(separator: ", ") + (classNames.count > 10 ? ", ..." : "") + ")")
            }
            if let number = CSV.number(text) { values[target] = number; continue }
            guard strict else { values[target] = .nan; continue }
            throw UserError("\(table.location(ofRow: row)): \(nonNumberProblem(text)) value \(quotedForMessage(text)) in column "
                + "\(quotedForMessage(column.name))")
        }
    }
}

/// What a message about text in a numeric column adds.
let textHint = " (list a text column under data.categorical)"

/// Why a cell is not a number: "non-finite" (nan, inf), "out-of-range" (beyond Float) or "non-numeric".
func nonNumberProblem(_ text: String) -> String {
    let lowered = text.lowercased()
    if lowered.contains("nan") || lowered.contains("inf") { return "non-finite" }
    if let value = Double(text), abs(value) > Double(Float.greatestFiniteMagnitude) { return "out-of-range" }
    return "non-numeric"
}
