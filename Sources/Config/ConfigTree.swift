import Foundation
import Support
import Yams

/// A parsed YAML document that remembers where each value came from, so errors name file:line and key.
indirect enum ConfigTree {
    case scalar(String, quoted: Bool, line: Int?)
    case mapping([(key: String, value: ConfigTree)], line: Int?)
    case sequence([ConfigTree], line: Int?)

    var line: Int? {
        switch self {
        case let .scalar(_, _, line), let .mapping(_, line), let .sequence(_, line): return line
        }
    }

    /// Largest config text accepted: configs are a few hundred bytes; a bigger file is most likely the wrong one.
    static let maximumTextLength = 1 << 20

    /// Parses YAML text; syntax errors become one line naming `source:line`.
    static func parse(_ text: String, source: String) throws -> ConfigTree {
        let length = text.utf8.count
        guard length <= maximumTextLength else {
            throw UserError("\(source): \(length) bytes is too large for a config (at most \(maximumTextLength)); is it the right file?")
        }
        // Before Yams sees them: Yams expands aliases and hashes mapping keys, so a few nested aliases
        // ("billion laughs") would take exponential time and memory inside Yams.compose.
        try rejectAnchorsAndAliases(text, source: source)
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw UserError(describe(error, source: source))
        }
        guard let node else { return .mapping([], line: 1) }
        // Without aliases a document has at most a few nodes per byte; more means Yams expanded aliases the
        // scan above missed, so stop before converting an exponentially large tree.
        var budget = 4 * length + 16
        return try convert(node, source: source, budget: &budget)
    }

    /// Throws when the text may use a YAML anchor (`&name`) or alias (`*name`): an `&` or `*` that starts a
    /// token (after a line break, blank, `[`, `{`, `,` or `:`) and is followed by a name. Deliberately
    /// conservative rather than a YAML parser, so nothing slips through to Yams: quoted text and block
    /// scalars are scanned too (a config has no use for " *x" there), and a trailing `# comment` is skipped
    /// only on lines without quote characters (where a `#` after a blank really starts a comment).
    static func rejectAnchorsAndAliases(_ text: String, source: String) throws {
        func isSeparator(_ byte: UInt8) -> Bool {
            switch byte {
            // blanks and line breaks (CR, and the last byte of NEL, LS, PS, BOM), flow indicators, ':'
            case 0x20, 0x09, 0x0A, 0x0D, 0x85, 0xA8, 0xA9, 0xBF,
                 UInt8(ascii: "["), UInt8(ascii: "{"), UInt8(ascii: ","), UInt8(ascii: ":"): return true
            default: return false
            }
        }
        func isLineBreak(_ byte: UInt8) -> Bool { byte == 0x0D || byte == 0x85 || byte == 0xA8 || byte == 0xA9 }
        var lineNumber = 0
        for line in text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            let bytes = Array(line)
            let hasQuotes = bytes.contains(UInt8(ascii: "\"")) || bytes.contains(UInt8(ascii: "'"))
            var index = 0
            while index < bytes.count {
                let byte = bytes[index]
                let previous = index == 0 ? 0x0A : bytes[index - 1]
                if byte == UInt8(ascii: "#"), !hasQuotes, previous == 0x20 || previous == 0x09 || previous == 0x0A {
                    // A comment runs to the end of the line; libyaml also ends lines at CR, NEL, LS and PS.
                    while index < bytes.count, !isLineBreak(bytes[index]) { index += 1 }
                    continue
                }
                if byte == UInt8(ascii: "*") || byte == UInt8(ascii: "&"), isSeparator(previous),
                   index + 1 < bytes.count, !isSeparator(bytes[index + 1]) || bytes[index + 1] == UInt8(ascii: ":") {
                    throw UserError("\(source):\(lineNumber): YAML anchors and aliases (&name, *name) are not supported in configs")
                }
                index += 1
            }
        }
    }

    private static func describe(_ error: YamlError, source: String) -> String {
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _),
             let .composer(context, problem, mark, _):
            let while_ = context.map { " (\($0.text) at line \($0.mark.line))" } ?? ""
            return "\(source):\(mark.line): YAML syntax error: \(problem)\(while_)"
        case let .duplicatedKeysInMapping(duplicates, context):
            return "\(source):\(context.mark.line): duplicate key \(duplicates.sorted().map { escapedForMessage($0, limit: 80) }.joined(separator: ", "))"
        default:
            return "\(source): YAML error: \(error.description.split(separator: "\n").first ?? "")"
        }
    }

    private static func convert(_ node: Node, source: String, budget: inout Int) throws -> ConfigTree {
        budget -= 1
        guard budget >= 0 else {
            throw UserError("\(source):\(node.mark?.line ?? 0): YAML anchors and aliases (&name, *name) are not supported in configs")
        }
        switch node {
        case let .scalar(scalar):
            return .scalar(scalar.string, quoted: scalar.style == .singleQuoted || scalar.style == .doubleQuoted,
                           line: scalar.mark?.line)
        case let .mapping(mapping):
            var pairs: [(key: String, value: ConfigTree)] = []
            var seen = Set<String>()
            for (key, value) in mapping {
                guard let name = key.scalar?.string else {
                    throw UserError("\(source):\(key.mark?.line ?? 0): mapping keys must be plain names")
                }
                guard seen.insert(name).inserted else {
                    throw UserError("\(source):\(key.mark?.line ?? 0): duplicate key \(escapedForMessage(name, limit: 80))")
                }
                pairs.append((name, try convert(value, source: source, budget: &budget)))
            }
            return .mapping(pairs, line: mapping.mark?.line)
        case let .sequence(sequence):
            var items: [ConfigTree] = []
            for item in sequence { items.append(try convert(item, source: source, budget: &budget)) }
            return .sequence(items, line: sequence.mark?.line)
        case let .alias(alias):
            throw UserError("\(source):\(alias.mark?.line ?? 0): YAML anchors and aliases (&name, *name) are not supported in configs")
        }
    }

    /// Sets `path` (dotted keys) to `value`, creating mappings on the way; used by `--set`.
    func setting(_ path: ArraySlice<String>, to value: ConfigTree, fullPath: String) throws -> ConfigTree {
        guard let key = path.first else { return value }
        guard case let .mapping(pairs, line) = self else {
            // `path` is a slice of fullPath's components: the ones before it name this non-mapping value.
            let parent = fullPath.split(separator: ".", omittingEmptySubsequences: false).prefix(path.startIndex).joined(separator: ".")
            throw UserError("--set \(escapedForMessage(fullPath, limit: 200)): "
                + (parent.isEmpty ? "the config is not a mapping" : "\(escapedForMessage(parent, limit: 200)) is not a mapping"))
        }
        var copy = pairs
        if let index = copy.firstIndex(where: { $0.key == key }) {
            copy[index].value = try copy[index].value.setting(path.dropFirst(), to: value, fullPath: fullPath)
        } else {
            copy.append((key, try ConfigTree.mapping([], line: nil).setting(path.dropFirst(), to: value, fullPath: fullPath)))
        }
        return .mapping(copy, line: line)
    }
}

/// Reads a ConfigTree strictly: each key must be taken, or it is reported as unknown with its dotted path.
struct ConfigReader {
    let source: String

    func location(_ tree: ConfigTree?, _ path: String) -> String {
        // Keys may hold any text (quoted YAML keys); escaping keeps the message on one line.
        let path = escapedForMessage(path, limit: 200)
        if let line = tree?.line { return "\(source):\(line): \(path)" }
        return "\(source): \(path)"
    }

    /// A view of one mapping; `finish()` rejects keys nobody asked for.
    final class Section {
        let reader: ConfigReader
        let path: String
        let tree: ConfigTree?
        private var pairs: [(key: String, value: ConfigTree)]
        private var taken: Set<String> = []

        init(reader: ConfigReader, path: String, tree: ConfigTree?) throws {
            self.reader = reader
            self.path = path
            self.tree = tree
            switch tree {
            case nil: pairs = []
            case let .mapping(items, _)?: pairs = items
            case let .scalar(text, _, _)? where text.isEmpty || text == "null" || text == "~": pairs = []
            default: throw UserError("\(reader.location(tree, path)): expected a mapping of keys")
            }
        }

        func childPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

        /// "file:line: section.key" for a value of this section (`tree` gives the line).
        func location(_ tree: ConfigTree?, _ key: String) -> String { reader.location(tree, childPath(key)) }

        /// The error for a required key that is absent: "file:line: section.key: required" plus `detail`.
        func missing(_ key: String, _ detail: String = "") -> UserError {
            UserError("\(location(tree, key)): required\(detail)")
        }

        /// Item `index` of the list under `key`, read as a mapping of its own (`model.layers[2]`).
        func element(_ key: String, index: Int, tree: ConfigTree) throws -> Section {
            try Section(reader: reader, path: "\(childPath(key))[\(index)]", tree: tree)
        }

        func value(_ key: String) -> ConfigTree? {
            taken.insert(key)
            guard let value = pairs.first(where: { $0.key == key })?.value else { return nil }
            if case let .scalar(text, quoted, _) = value, !quoted, text == "null" || text == "~" || text.isEmpty { return nil }
            return value
        }

        /// The value at `key` then `inner` of this mapping, if both are there (for locating a nested key in errors).
        func nested(_ key: String, _ inner: String) -> ConfigTree? {
            guard case let .mapping(pairs, _)? = value(key) else { return nil }
            return pairs.first { $0.key == inner }?.value
        }

        func section(_ key: String) throws -> Section {
            try Section(reader: reader, path: childPath(key), tree: value(key))
        }

        func scalar(_ key: String, expected: String) throws -> (text: String, tree: ConfigTree)? {
            guard let tree = value(key) else { return nil }
            guard case let .scalar(text, _, _) = tree else {
                throw UserError("\(reader.location(tree, childPath(key))): expected \(expected)")
            }
            return (text, tree)
        }

        func string(_ key: String) throws -> String? { try scalar(key, expected: "a string")?.text }

        func integer(_ key: String, minimum: Int? = nil) throws -> Int? {
            guard let (text, tree) = try scalar(key, expected: "an integer") else { return nil }
            guard let value = Int(text.replacingOccurrences(of: "_", with: "")) else {
                throw UserError("\(reader.location(tree, childPath(key))): expected an integer, got \(quotedForMessage(text))")
            }
            if let minimum, value < minimum {
                throw UserError("\(reader.location(tree, childPath(key))): must be at least \(minimum), got \(value)")
            }
            return value
        }

        func number(_ key: String, minimum: Double? = nil, exclusiveMinimum: Double? = nil,
                    maximum: Double? = nil, exclusiveMaximum: Double? = nil) throws -> Double? {
            guard let (text, tree) = try scalar(key, expected: "a number") else { return nil }
            guard let value = Double(text), value.isFinite else {
                throw UserError("\(reader.location(tree, childPath(key))): expected a number, got \(quotedForMessage(text))")
            }
            let place = reader.location(tree, childPath(key))
            if let minimum, value < minimum { throw UserError("\(place): must be at least \(minimum), got \(escapedForMessage(text, limit: 40))") }
            if let exclusiveMinimum, value <= exclusiveMinimum {
                throw UserError("\(place): must be greater than \(exclusiveMinimum), got \(escapedForMessage(text, limit: 40))")
            }
            if let maximum, value > maximum { throw UserError("\(place): must be at most \(maximum), got \(escapedForMessage(text, limit: 40))") }
            if let exclusiveMaximum, value >= exclusiveMaximum {
                throw UserError("\(place): must be less than \(exclusiveMaximum), got \(escapedForMessage(text, limit: 40))")
            }
            return value
        }

        func boolean(_ key: String) throws -> Bool? {
            guard let (text, tree) = try scalar(key, expected: "true or false") else { return nil }
            switch text.lowercased() {
            case "true", "yes", "on": return true
            case "false", "no", "off": return false
            default: throw UserError("\(reader.location(tree, childPath(key))): expected true or false, got \(quotedForMessage(text))")
            }
        }

        func choice<T: RawRepresentable & CaseIterable>(_ key: String, _ type: T.Type) throws -> T? where T.RawValue == String {
            guard let (text, tree) = try scalar(key, expected: "a name") else { return nil }
            guard let value = T(rawValue: text) else {
                let names = T.allCases.map(\.rawValue).joined(separator: ", ")
                throw UserError("\(reader.location(tree, childPath(key))): unknown value \(quotedForMessage(text)) (expected one of: \(names))")
            }
            return value
        }

        func sequence(_ key: String) throws -> [ConfigTree]? {
            guard let tree = value(key) else { return nil }
            guard case let .sequence(items, _) = tree else {
                throw UserError("\(reader.location(tree, childPath(key))): expected a list")
            }
            return items
        }

        /// Rejects every key of this mapping that was not read.
        func finish() throws {
            for (key, value) in pairs where !taken.contains(key) {
                let known = taken.sorted().joined(separator: ", ")
                throw UserError("\(reader.location(value, childPath(key))): unknown key (known keys here: \(known))")
            }
        }
    }
}
