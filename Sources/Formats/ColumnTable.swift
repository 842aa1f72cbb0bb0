/// A table as a reader found it, before any column rule: named columns of numbers (NaN where a cell is not a number)
/// or of text, in file order, with where each row came from. CSV produces it; so can any reader of named columns.
public struct ColumnTable {
    /// One column's cells.
    public enum Cells {
        /// Numbers, NaN where the cell is not one (its text is then in `Column.nonNumbers`).
        case numbers([Float])
        /// Text, nil for a null (a reader's typed gap; CSV has none: an empty cell is "").
        case text([String?])
    }

    /// A named column.
    public struct Column {
        public var name: String
        public var cells: Cells
        /// The cells of a numeric column that are not numbers: their row and text (nil: a null), in row order.
        public var nonNumbers: [(row: Int, text: String?)]

        /// A column of `cells`; `nonNumbers` lists a numeric column's cells that are not numbers.
        public init(name: String, cells: Cells, nonNumbers: [(row: Int, text: String?)] = []) {
            (self.name, self.cells, self.nonNumbers) = (name, cells, nonNumbers)
        }

        /// Every cell as text: a text cell as it is, a number as `numberText` writes it, else the text that was
        /// not a number (nil for a null).
        public func textCells() -> [String?] {
            switch cells {
            case let .text(values): return values
            case let .numbers(values):
                var texts = values.map { $0.isNaN ? nil : numberText($0) }
                for cell in nonNumbers { texts[cell.row] = cell.text }
                return texts
            }
        }
    }

    /// The file the rows came from (for shards, the first).
    public var source: String
    /// Where the header is, for errors about the columns: `path:LINE` for CSV, else the path.
    public var headerLocation: String
    public var columns: [Column]
    public private(set) var rowCount: Int
    /// The 1-based file line of each row (CSV); nil when rows are numbered from 0 in the file.
    public private(set) var lines: [Int]?
    /// The files the rows came from, in order, and the table row each file's rows start at (one file: `[source]`, `[0]`).
    public private(set) var files: (paths: [String], starts: [Int])

    /// A table of `rowCount` rows; every column must have that many cells. `files` lists shards (default: `source` alone).
    public init(source: String, headerLocation: String? = nil, columns: [Column], rowCount: Int, lines: [Int]? = nil,
                files: (paths: [String], starts: [Int])? = nil) {
        precondition(lines == nil || lines!.count == rowCount, "ColumnTable: one line per row")
        (self.source, self.columns, self.rowCount, self.lines) = (source, columns, rowCount, lines)
        self.headerLocation = headerLocation ?? source
        self.files = files ?? ([source], [0])
    }

    /// The names of the columns in file order.
    public var names: [String] { columns.map(\.name) }

    /// The index of the column named `name`.
    public func index(of name: String) -> Int? { columns.firstIndex { $0.name == name } }

    /// Where row `row` (0-based) came from: `path:LINE` for CSV, else `path (row N)` counting in its own file.
    public func location(ofRow row: Int) -> String {
        if let lines, row >= 0, row < lines.count { return "\(source):\(lines[row])" }
        let file = max(0, files.starts.lastIndex { $0 <= row } ?? 0)
        return "\(files.paths[file]) (row \(row - files.starts[file]))"
    }

    /// Keeps only the first `maximumCount` rows.
    public mutating func limit(to maximumCount: Int) {
        let kept = max(0, maximumCount)
        guard kept < rowCount else { return }
        for index in columns.indices {
            switch columns[index].cells {
            case let .numbers(values): columns[index].cells = .numbers(Array(values[..<kept]))
            case let .text(values): columns[index].cells = .text(Array(values[..<kept]))
            }
            columns[index].nonNumbers.removeAll { $0.row >= kept }
        }
        lines?.removeSubrange(kept...)
        rowCount = kept
    }
}

/// A number as a level or class name: `3` for whole numbers, else Swift's shortest round-trip text.
public func numberText(_ value: Float) -> String {
    if value == value.rounded(), abs(value) < 1e9 { return String(Int(value)) }
    return "\(value)"
}
