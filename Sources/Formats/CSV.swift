#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Support

/// CSV files: a header row naming the columns, then one row per sample. Fields are separated by commas; a field in
/// double quotes may hold commas, line breaks and doubled quotes (RFC 4180). Spaces around unquoted fields are
/// dropped; a quoted field keeps its text exactly (spaces inside are dropped only when it is read as a number).
public enum CSV {
    /// Parses CSV bytes into a column table: the columns named in `textColumns` keep every cell's text, every other
    /// column is read as numbers (a cell that is not a finite number is NaN there and keeps its text in
    /// `nonNumbers`). Every column of `requiredColumns` must be in the header. Every defect is a `UserError`
    /// "PATH:LINE: reason" (or "PATH: reason" for whole-file problems).
    public static func read(_ bytes: [UInt8], path: String, textColumns: Set<String> = [],
                            requiredColumns: [String] = []) throws -> ColumnTable {
        var parser = CSVParser(path: path, textColumns: textColumns, requiredColumns: requiredColumns)
        // A trailing NUL lets strtof stop safely at the end of the last field.
        var terminated = bytes
        terminated.append(0)
        try terminated.withUnsafeBufferPointer { buffer in
            try parser.run(buffer.baseAddress!, length: buffer.count - 1)
        }
        guard let header = parser.header else {
            let including = requiredColumns.isEmpty ? ""
                : ", including " + requiredColumns.map { quotedForMessage($0) }.joined(separator: ", ")
            throw UserError("\(path): empty file (expected a header row naming the columns\(including))")
        }
        guard !parser.lines.isEmpty else {
            throw UserError("\(path): no data rows after the header on line \(header.line)")
        }
        return ColumnTable(source: path, headerLocation: "\(path):\(header.line)", columns: parser.columns(),
                           rowCount: parser.lines.count, lines: parser.lines)
    }

    /// A number as CSV reads it: a finite decimal, with optional sign, fraction and exponent; nil otherwise.
    public static func number(_ text: String) -> Float? {
        var bytes = Array(text.utf8)
        let count = bytes.count
        bytes.append(0)
        return bytes.withUnsafeBufferPointer { parseNumber($0.baseAddress!, 0, count) }
    }
}

private struct CSVHeader {
    var line: Int
    var names: [String]
    /// For each column, its index among the text columns (nil for a numeric column).
    var textIndex: [Int?]
    /// For each column, its index among the numeric columns (nil for a text column).
    var numericIndex: [Int?]
}

/// One field of a record: its bytes `from..<to` (inside the quotes for a quoted field).
private struct Field {
    var from: Int
    var to: Int
    var quoted: Bool
    /// A quoted field with `""` inside (its text needs them made single).
    var escapedQuotes: Bool
}

private struct CSVParser {
    let path: String
    let textColumns: Set<String>
    let requiredColumns: [String]
    var header: CSVHeader?
    var lines: [Int] = []
    private var numbers: [[Float]] = []
    private var nonNumbers: [[(row: Int, text: String?)]] = []
    private var texts: [[String?]] = []
    private var fields: [Field] = []

    init(path: String, textColumns: Set<String>, requiredColumns: [String]) {
        (self.path, self.textColumns, self.requiredColumns) = (path, textColumns, requiredColumns)
    }

    /// The parsed columns in header order.
    func columns() -> [ColumnTable.Column] {
        guard let header else { return [] }
        return header.names.indices.map { column in
            if let text = header.textIndex[column] { return ColumnTable.Column(name: header.names[column], cells: .text(texts[text])) }
            let numeric = header.numericIndex[column]!
            return ColumnTable.Column(name: header.names[column], cells: .numbers(numbers[numeric]), nonNumbers: nonNumbers[numeric])
        }
    }

    mutating func run(_ base: UnsafePointer<UInt8>, length: Int) throws {
        var position = 0
        // A UTF-8 byte-order mark (Excel exports) is not part of the first column's name.
        if length >= 3, base[0] == 0xEF, base[1] == 0xBB, base[2] == 0xBF { position = 3 }
        var line = 1
        while position < length {
            if let next = blankLineEnd(base, position, length) {
                position = next
                line += 1
                continue
            }
            let recordLine = line
            position = try scanRecord(base, position, length, line: &line)
            if let header {
                try store(base, line: recordLine, header: header)
            } else {
                header = try parseHeader(base, line: recordLine)
            }
        }
    }

    /// The position after a line holding only spaces and tabs, or nil when the line at `start` has other text.
    private func blankLineEnd(_ base: UnsafePointer<UInt8>, _ start: Int, _ length: Int) -> Int? {
        var index = start
        while index < length {
            switch base[index] {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"): index += 1
            case UInt8(ascii: "\n"): return index + 1
            default: return nil
            }
        }
        return index
    }

    /// Splits the record at `start` into `fields`; returns the position after its line break. `line` advances past
    /// the line breaks inside quoted fields and the record's own.
    private mutating func scanRecord(_ base: UnsafePointer<UInt8>, _ start: Int, _ length: Int, line: inout Int) throws -> Int {
        fields.removeAll(keepingCapacity: true)
        let recordLine = line
        var position = start
        while true {
            while position < length, base[position] == UInt8(ascii: " ") || base[position] == UInt8(ascii: "\t") { position += 1 }
            if position < length, base[position] == UInt8(ascii: "\"") {
                var field = Field(from: position + 1, to: position + 1, quoted: true, escapedQuotes: false)
                var index = position + 1
                while true {
                    guard index < length else {
                        throw UserError("\(path):\(recordLine): a quoted field is not closed (a \" without its closing \")")
                    }
                    let byte = base[index]
                    if byte == UInt8(ascii: "\"") {
                        if index + 1 < length, base[index + 1] == UInt8(ascii: "\"") {
                            field.escapedQuotes = true
                            index += 2
                            continue
                        }
                        break
                    }
                    if byte == UInt8(ascii: "\n") { line += 1 }
                    index += 1
                }
                field.to = index
                fields.append(field)
                position = index + 1
                while position < length, base[position] == UInt8(ascii: " ") || base[position] == UInt8(ascii: "\t")
                    || base[position] == UInt8(ascii: "\r") { position += 1 }
                if position >= length { line += 1; return position }
                switch base[position] {
                case UInt8(ascii: ","): position += 1; continue
                case UInt8(ascii: "\n"): line += 1; return position + 1
                default:
                    throw UserError("\(path):\(line): text after the closing quote of field \(fields.count) (quote a field whole, "
                        + "with \"\" for a quote inside)")
                }
            }
            var end = position
            while end < length, base[end] != UInt8(ascii: ","), base[end] != UInt8(ascii: "\n") { end += 1 }
            var to = end
            if to > position, base[to - 1] == UInt8(ascii: "\r"), end == length || base[end] == UInt8(ascii: "\n") { to -= 1 }
            while to > position, base[to - 1] == UInt8(ascii: " ") || base[to - 1] == UInt8(ascii: "\t") { to -= 1 }
            fields.append(Field(from: position, to: to, quoted: false, escapedQuotes: false))
            if end >= length { line += 1; return end }
            if base[end] == UInt8(ascii: "\n") { line += 1; return end + 1 }
            position = end + 1
        }
    }

    private func text(_ base: UnsafePointer<UInt8>, _ field: Field) -> String {
        let text = String(decoding: UnsafeBufferPointer(start: base + field.from, count: field.to - field.from), as: UTF8.self)
        return field.escapedQuotes ? text.replacingOccurrences(of: "\"\"", with: "\"") : text
    }

    private mutating func parseHeader(_ base: UnsafePointer<UInt8>, line: Int) throws -> CSVHeader {
        var names = fields.map { field -> String in
            let name = text(base, field)
            return field.quoted ? name.trimmingSpaces() : name
        }
        if names.count == 1, names[0].isEmpty { names = [""] }
        let location = "\(path):\(line)"
        for name in requiredColumns where !names.contains(name) {
            throw UserError("\(location): no \(quotedForMessage(name)) column in the header; columns are: "
                + names.map { quotedForMessage($0) }.joined(separator: ", "))
        }
        if let empty = names.firstIndex(of: "") {
            throw UserError("\(location): column \(empty + 1) of the header has no name")
        }
        var seen = Set<String>()
        for name in names where !seen.insert(name).inserted {
            throw UserError("\(location): column \(quotedForMessage(name)) appears more than once in the header")
        }
        var textIndex = [Int?](repeating: nil, count: names.count), numericIndex = textIndex
        for (column, name) in names.enumerated() {
            if textColumns.contains(name) {
                textIndex[column] = texts.count
                texts.append([])
            } else {
                numericIndex[column] = numbers.count
                numbers.append([])
                nonNumbers.append([])
            }
        }
        return CSVHeader(line: line, names: names, textIndex: textIndex, numericIndex: numericIndex)
    }

    private mutating func store(_ base: UnsafePointer<UInt8>, line: Int, header: CSVHeader) throws {
        guard fields.count == header.names.count else {
            throw UserError("\(path):\(line): expected \(header.names.count) fields, got \(fields.count)")
        }
        let row = lines.count
        for (column, field) in fields.enumerated() {
            if let text = header.textIndex[column] {
                texts[text].append(self.text(base, field))
                continue
            }
            let numeric = header.numericIndex[column]!
            var (from, to) = (field.from, field.to)
            if field.quoted {
                while from < to, base[from] == UInt8(ascii: " ") { from += 1 }
                while to > from, base[to - 1] == UInt8(ascii: " ") { to -= 1 }
            }
            if !field.escapedQuotes, let value = parseNumber(base, from, to) {
                numbers[numeric].append(value)
            } else {
                numbers[numeric].append(.nan)
                nonNumbers[numeric].append((row, self.text(base, Field(from: from, to: to, quoted: field.quoted,
                                                                         escapedQuotes: field.escapedQuotes))))
            }
        }
        lines.append(line)
    }
}

extension String {
    /// The text without spaces at either end.
    func trimmingSpaces() -> String {
        var scalars = Substring(self)
        while scalars.first == " " { scalars.removeFirst() }
        while scalars.last == " " { scalars.removeLast() }
        return String(scalars)
    }
}

private let exactPowersOfTen: [Float] = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10]

/// Parses a finite decimal number occupying exactly bytes `from..<to`, or returns nil.
///
/// Plain decimals with at most 7 significant digits and 10 fraction digits take an exact fast path
/// (integer mantissa and power of ten both exact in Float, so one correctly rounded division);
/// everything else (exponents, long mantissas) goes through strtof.
@inline(__always)
private func parseNumber(_ base: UnsafePointer<UInt8>, _ from: Int, _ to: Int) -> Float? {
    guard from < to else { return nil }
    var index = from
    var negative = false
    if base[index] == UInt8(ascii: "-") || base[index] == UInt8(ascii: "+") {
        negative = base[index] == UInt8(ascii: "-")
        index += 1
    }
    var mantissa: UInt32 = 0
    var digits = 0
    var fractionDigits = 0
    var seenPoint = false
    var simple = true
    var sawDigit = false
    while index < to {
        let byte = base[index]
        if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
            sawDigit = true
            if mantissa > 0 || byte != UInt8(ascii: "0") { digits += 1 }
            mantissa = mantissa &* 10 &+ UInt32(byte &- UInt8(ascii: "0"))
            if seenPoint { fractionDigits += 1 }
            if digits > 7 || fractionDigits > 10 { simple = false; break }
        } else if byte == UInt8(ascii: "."), !seenPoint {
            seenPoint = true
        } else {
            simple = false
            break
        }
        index += 1
    }
    if simple, sawDigit {
        let magnitude = Float(mantissa) / exactPowersOfTen[fractionDigits]
        return negative ? -magnitude : magnitude
    }
    // Slow path: strtof must consume the whole field and yield a finite number.
    var endPointer: UnsafeMutablePointer<CChar>?
    let start = UnsafeRawPointer(base + from).assumingMemoryBound(to: CChar.self)
    // strtof also accepts leading whitespace, hex floats, "inf" and "nan", none of which is a CSV number here.
    let first = base[from]
    guard first == UInt8(ascii: "-") || first == UInt8(ascii: "+") || first == UInt8(ascii: ".")
        || (first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9")) else { return nil }
    for position in from..<to where base[position] | 0x20 == UInt8(ascii: "x") { return nil }
    // Every field ends at a byte strtof stops at (a comma, quote, space, line break or the trailing NUL).
    let value = strtof(start, &endPointer)
    let expectedEnd = UnsafeRawPointer(base + to)
    guard let endPointer, UnsafeRawPointer(endPointer) == expectedEnd else { return nil }
    return value.isFinite ? value : nil
}
