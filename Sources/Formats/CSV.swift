#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Support

/// A parsed numeric CSV file: target columns (by default one named `label`) plus feature columns, with each row's
/// line number.
public struct CSVTable {
    /// Feature column names in file order (every column except the targets).
    public var featureNames: [String]
    /// Row-major feature values, `lines.count × featureNames.count`.
    public var features: [Float]
    /// The target columns' names, in the order asked for.
    public var targetNames: [String]
    /// Row-major target values, `lines.count × targetNames.count`.
    public var targets: [Float]
    /// 1-based line number of each data row in the file.
    public var lines: [Int]

    /// Parses CSV bytes with the columns named `targets` as targets; every defect is a `UserError` "PATH:LINE: reason"
    /// (or "PATH: reason" for whole-file problems). Without `requireTargets` a missing target column gives values of 0
    /// and a non-numeric target gives NaN.
    public static func parse(_ bytes: [UInt8], path: String, targets: [String] = ["label"],
                             requireTargets: Bool = true) throws -> CSVTable {
        precondition(!targets.isEmpty && Set(targets).count == targets.count, "CSVTable.parse: targets must be distinct")
        var parser = CSVParser(path: path, targetNames: targets, requireTargets: requireTargets)
        // A trailing NUL lets strtof stop safely at the end of the last field.
        var terminated = bytes
        terminated.append(0)
        try terminated.withUnsafeBufferPointer { buffer in
            try parser.run(buffer.baseAddress!, length: buffer.count - 1)
        }
        guard let header = parser.header else {
            throw UserError("\(path): empty file (expected a header row naming the columns, including "
                + "\(targets.map { quotedForMessage($0) }.joined(separator: ", ")))")
        }
        guard !parser.lines.isEmpty else {
            throw UserError("\(path): no data rows after the header on line \(header.line)")
        }
        return CSVTable(featureNames: header.featureNames, features: parser.features, targetNames: targets,
                        targets: parser.targets, lines: parser.lines)
    }
}

private struct CSVHeader {
    var line: Int
    var columnNames: [String]
    /// For each column, the index of the target it holds (nil for a feature).
    var targetOfColumn: [Int?]
    var featureNames: [String] {
        columnNames.indices.filter { targetOfColumn[$0] == nil }.map { columnNames[$0] }
    }
}

private struct CSVParser {
    let path: String
    let targetNames: [String]
    let requireTargets: Bool
    var header: CSVHeader?
    var features: [Float] = []
    var targets: [Float] = []
    var lines: [Int] = []
    /// One row's targets, filled column by column (0 for a target column the file lacks).
    private var rowTargets: [Float]

    init(path: String, targetNames: [String], requireTargets: Bool) {
        self.path = path
        self.targetNames = targetNames
        self.requireTargets = requireTargets
        rowTargets = [Float](repeating: 0, count: targetNames.count)
    }

    mutating func run(_ base: UnsafePointer<UInt8>, length: Int) throws {
        var position = 0
        // A UTF-8 byte-order mark (Excel exports) is not part of the first column's name.
        if length >= 3, base[0] == 0xEF, base[1] == 0xBB, base[2] == 0xBF { position = 3 }
        var line = 0
        while position < length {
            line += 1
            let lineEnd: Int
            if let newline = memchr(base + position, Int32(UInt8(ascii: "\n")), length - position) {
                lineEnd = base.distance(to: newline.assumingMemoryBound(to: UInt8.self))
            } else {
                lineEnd = length
            }
            var contentEnd = lineEnd
            if contentEnd > position, base[contentEnd - 1] == UInt8(ascii: "\r") { contentEnd -= 1 }
            let start = position
            position = lineEnd + 1
            if isBlank(base, start, contentEnd) { continue }
            if let header {
                try parseRow(base, start, contentEnd, line: line, header: header)
            } else {
                header = try parseHeader(base, start, contentEnd, line: line)
                let expectedRows = length / max(contentEnd - start, 1)
                features.reserveCapacity(expectedRows * max(header?.columnNames.count ?? 1, 1))
            }
        }
    }

    private func isBlank(_ base: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Bool {
        var index = start
        while index < end {
            if base[index] != UInt8(ascii: " ") && base[index] != UInt8(ascii: "\t") { return false }
            index += 1
        }
        return true
    }

    private func parseHeader(_ base: UnsafePointer<UInt8>, _ start: Int, _ end: Int, line: Int) throws -> CSVHeader {
        var names: [String] = []
        var fieldStart = start
        while true {
            var fieldEnd = fieldStart
            while fieldEnd < end, base[fieldEnd] != UInt8(ascii: ",") { fieldEnd += 1 }
            let (from, to) = trimmedField(base, fieldStart, fieldEnd)
            names.append(String(decoding: UnsafeBufferPointer(start: base + from, count: to - from), as: UTF8.self))
            if fieldEnd >= end { break }
            fieldStart = fieldEnd + 1
        }
        let location = "\(path):\(line)"
        var targetOfColumn = [Int?](repeating: nil, count: names.count)
        for (target, name) in targetNames.enumerated() {
            let columns = names.indices.filter { names[$0] == name }
            if requireTargets && columns.isEmpty {
                throw UserError("\(location): no \(quotedForMessage(name)) column in the header; columns are: "
                    + names.map { quotedForMessage($0) }.joined(separator: ", "))
            }
            // A target named twice would also be read as a feature.
            guard columns.count <= 1 else {
                throw UserError("\(location): the header names the target \(quotedForMessage(name)) \(columns.count) times")
            }
            if let column = columns.first { targetOfColumn[column] = target }
        }
        guard targetOfColumn.contains(where: { $0 == nil }) else {
            throw UserError("\(location): the header has no feature columns besides "
                + targetNames.map { quotedForMessage($0) }.joined(separator: ", "))
        }
        if let empty = names.firstIndex(of: "") {
            throw UserError("\(location): column \(empty + 1) of the header has no name")
        }
        var seen = Set<String>()
        for name in names where !seen.insert(name).inserted {
            throw UserError("\(location): column \(quotedForMessage(name)) appears more than once in the header")
        }
        return CSVHeader(line: line, columnNames: names, targetOfColumn: targetOfColumn)
    }

    private mutating func parseRow(_ base: UnsafePointer<UInt8>, _ start: Int, _ end: Int, line: Int, header: CSVHeader) throws {
        let columnCount = header.columnNames.count
        var column = 0
        var fieldStart = start
        for target in rowTargets.indices { rowTargets[target] = 0 }
        while true {
            var fieldEnd = fieldStart
            while fieldEnd < end, base[fieldEnd] != UInt8(ascii: ",") { fieldEnd += 1 }
            if column >= columnCount {
                throw UserError("\(path):\(line): expected \(columnCount) fields, got \(countFields(base, start, end))")
            }
            let (from, to) = trimmedField(base, fieldStart, fieldEnd)
            var parsed = parseNumber(base, from, to)
            let target = header.targetOfColumn[column]
            if parsed == nil, !requireTargets, target != nil { parsed = .nan }
            guard let value = parsed else {
                let text = String(decoding: UnsafeBufferPointer(start: base + from, count: to - from), as: UTF8.self)
                let name = header.columnNames[column]
                if from == to { throw UserError("\(path):\(line): missing value in column \(quotedForMessage(name))") }
                let lowered = text.lowercased()
                let problem = lowered.contains("nan") || lowered.contains("inf") ? "non-finite"
                    : (Double(text).map { abs($0) > Double(Float.greatestFiniteMagnitude) } ?? false) ? "out-of-range"
                    : "non-numeric"
                throw UserError("\(path):\(line): \(problem) value \(quotedForMessage(text)) in column \(quotedForMessage(name))")
            }
            if let target { rowTargets[target] = value } else { features.append(value) }
            column += 1
            if fieldEnd >= end { break }
            fieldStart = fieldEnd + 1
        }
        guard column == columnCount else {
            throw UserError("\(path):\(line): expected \(columnCount) fields, got \(column)")
        }
        targets.append(contentsOf: rowTargets)
        lines.append(line)
    }

    private func countFields(_ base: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Int {
        var fields = 1
        for index in start..<end where base[index] == UInt8(ascii: ",") { fields += 1 }
        return fields
    }

    /// The field without surrounding spaces/tabs and one pair of surrounding double quotes.
    private func trimmedField(_ base: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> (Int, Int) {
        var from = start, to = end
        while from < to, base[from] == UInt8(ascii: " ") || base[from] == UInt8(ascii: "\t") { from += 1 }
        while to > from, base[to - 1] == UInt8(ascii: " ") || base[to - 1] == UInt8(ascii: "\t") { to -= 1 }
        if to - from >= 2, base[from] == UInt8(ascii: "\""), base[to - 1] == UInt8(ascii: "\"") {
            from += 1
            to -= 1
            while from < to, base[from] == UInt8(ascii: " ") { from += 1 }
            while to > from, base[to - 1] == UInt8(ascii: " ") { to -= 1 }
        }
        return (from, to)
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
    let value = strtof(start, &endPointer)
    let expectedEnd = UnsafeRawPointer(base + to)
    guard let endPointer, UnsafeRawPointer(endPointer) == expectedEnd,
          value.isFinite else { return nil }
    return value
}
