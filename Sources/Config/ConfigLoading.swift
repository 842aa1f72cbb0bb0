import Foundation
import Support

// MARK: - Loading

extension TrainingConfig {
    /// Loads a YAML file and applies `--set key=value` overrides (values parsed as YAML).
    public static func load(path: String, overrides: [String] = []) throws -> TrainingConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            let exists = FileManager.default.fileExists(atPath: path)
            throw UserError(exists ? "\(path): cannot read file" : "\(path): no such file")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw UserError("\(path): not UTF-8 text") }
        return try parse(text, source: path, overrides: overrides)
    }

    /// Decodes YAML text; `source` names it in errors.
    public static func parse(_ text: String, source: String, overrides: [String] = []) throws -> TrainingConfig {
        var tree = try ConfigTree.parse(text, source: source)
        for override in overrides {
            guard let equals = override.firstIndex(of: "="), equals != override.startIndex else {
                throw UserError("--set \(escapedForMessage(override)): expected dotted.key=value")
            }
            let key = String(override[..<equals])
            let valueText = String(override[override.index(after: equals)...])
            let value = try ConfigTree.parse(valueText.isEmpty ? "''" : valueText, source: "--set \(key)")
            let path = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            if path.contains(where: \.isEmpty) { throw UserError("--set \(escapedForMessage(override)): empty key in \(escapedForMessage(key))") }
            tree = try tree.setting(path[...], to: value, fullPath: key)
        }
        return try decode(tree, reader: ConfigReader(source: source))
    }

    static func decode(_ tree: ConfigTree, reader: ConfigReader) throws -> TrainingConfig {
        try read(try ConfigReader.Section(reader: reader, path: "", tree: tree))
    }
}

extension TrainingConfig.LoggingSection {
    /// Most steps one timeline records (each rank keeps its spans in memory until the end of the run).
    static let maximumTimelineSteps = 100_000

    /// `logging.timeline_steps` when the config leaves it out: 200 steps after 20 of warm-up.
    static let defaultTimelineSteps = 21...220

    /// Parses `FIRST-LAST` (steps counted from 1, inclusive, at most `maximumTimelineSteps` of them).
    static func parseStepWindow(_ text: String, location: String) throws -> ClosedRange<Int> {
        let bounds = text.split(separator: "-", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard bounds.count == 2, let first = bounds[0], let last = bounds[1], first >= 1, last >= first else {
            throw UserError("\(location): expected FIRST-LAST (steps counted from 1, FIRST ≤ LAST), got \(quotedForMessage(text))")
        }
        guard last - first < maximumTimelineSteps else {
            throw UserError("\(location): at most \(maximumTimelineSteps) steps, got \(last - first + 1)")
        }
        return first...last
    }
}
