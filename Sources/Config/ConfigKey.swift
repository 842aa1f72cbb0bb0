import Foundation
import Support

// A config section is declared once, as a table of keys: each key's name, type, default, check and resolved-YAML
// line come from its one entry, so decoding, validation and `config.yaml` cannot drift apart.

/// A mapping of the config (`training:`, `optimizer:`, ...) declared as a table of keys.
protocol ConfigSection: Equatable {
    /// Every key of the section, in the order they are read and written.
    static var keys: [ConfigKey<Self>] { get }
    /// A value every key then overwrites (with what the file says, or its default).
    static var unread: Self { get }
    /// Checks that involve several keys, after all of them were read.
    func validate(_ section: ConfigReader.Section) throws
}

extension ConfigSection {
    func validate(_ section: ConfigReader.Section) throws {}

    /// Reads every key of the section, then rejects keys nobody declared.
    static func read(_ section: ConfigReader.Section) throws -> Self {
        var value = unread
        for key in keys { try key.read(&value, section) }
        try value.validate(section)
        try section.finish()
        return value
    }

    /// The section's resolved keys, as they are written to `config.yaml`.
    var resolved: [(String, ResolvedValue)] {
        Self.keys.compactMap { key in key.write(self).map { (key.name, $0) } }
    }

    /// A section of one-line values as one flow mapping, `{units: 256, activation: relu}`, as the resolved config
    /// lists layers (and a loss with options).
    var inlineYAML: String {
        "{" + resolved.map { name, value -> String in
            guard case let .scalar(text) = value else { preconditionFailure("\(name) is not a one-line value") }
            return "\(name): \(text)"
        }.joined(separator: ", ") + "}"
    }
}

/// A resolved value of `config.yaml`: one line, a nested mapping, or a list of one-line items.
enum ResolvedValue {
    case scalar(String)
    case mapping([(String, ResolvedValue)])
    case list([String])

    /// The lines of `name: value` at `indent` spaces.
    func lines(name: String, indent: Int) -> [String] {
        let prefix = String(repeating: " ", count: indent)
        switch self {
        case let .scalar(text): return ["\(prefix)\(name): \(text)"]
        case let .mapping(pairs): return ["\(prefix)\(name):"] + pairs.flatMap { $0.1.lines(name: $0.0, indent: indent + 2) }
        case let .list(items): return ["\(prefix)\(name):"] + items.map { "\(prefix)  - \($0)" }
        }
    }
}

/// A value that can stand alone on one YAML line of a config.
protocol ConfigScalar: Equatable {
    /// Reads the key's value from `section` (nil when absent or null); throws a UserError naming the key.
    static func read(_ key: String, from section: ConfigReader.Section) throws -> Self?
    /// The value as it is written to `config.yaml`.
    var yamlText: String { get }
    /// The type as the reference names it (`integer`, `one of \`relu\`, \`tanh\``).
    static var referenceType: String { get }
}

extension Int: ConfigScalar {
    static func read(_ key: String, from section: ConfigReader.Section) throws -> Int? { try section.integer(key) }
    var yamlText: String { String(self) }
    static var referenceType: String { "integer" }
}

extension UInt64: ConfigScalar {
    static func read(_ key: String, from section: ConfigReader.Section) throws -> UInt64? {
        try section.integer(key, minimum: 0).map { UInt64($0) }
    }
    var yamlText: String { String(self) }
    static var referenceType: String { "integer ≥ 0" }
}

extension Double: ConfigScalar {
    static func read(_ key: String, from section: ConfigReader.Section) throws -> Double? { try section.number(key) }
    var yamlText: String { "\(self)" }
    static var referenceType: String { "number" }
}

extension Float: ConfigScalar {
    static func read(_ key: String, from section: ConfigReader.Section) throws -> Float? { try section.number(key).map { Float($0) } }
    var yamlText: String { "\(self)" }
    static var referenceType: String { "number" }
}

extension Bool: ConfigScalar {
    static func read(_ key: String, from section: ConfigReader.Section) throws -> Bool? { try section.boolean(key) }
    var yamlText: String { "\(self)" }
    static var referenceType: String { "`true` or `false`" }
}

extension String: ConfigScalar {
    static func read(_ key: String, from section: ConfigReader.Section) throws -> String? { try section.string(key) }
    var yamlText: String { quotedString(self) }
    static var referenceType: String { "string" }
}

/// A config value that is one of a few names (`relu`, `adamw`, ...).
protocol ConfigChoice: ConfigScalar, RawRepresentable, CaseIterable where RawValue == String {}

extension ConfigChoice {
    static func read(_ key: String, from section: ConfigReader.Section) throws -> Self? { try section.choice(key, Self.self) }
    var yamlText: String { rawValue }
    static var referenceType: String { "one of " + allCases.map { KeyDocumentation.code($0.rawValue) }.joined(separator: ", ") }
}

/// A range a numeric key must lie in; each bound is checked with the message of `ConfigReader.Section.number`.
struct NumericRange {
    var minimum: Double?
    var exclusiveMinimum: Double?
    var exclusiveMaximum: Double?

    static let any = NumericRange()
    static func atLeast(_ value: Double) -> NumericRange { NumericRange(minimum: value) }
    static func above(_ value: Double) -> NumericRange { NumericRange(exclusiveMinimum: value) }
    /// [0, 1): momentum and Adam's betas.
    static let unitInterval = NumericRange(minimum: 0, exclusiveMaximum: 1)

    /// The range as the reference writes it after "number": ` > 0`, ` ≥ 1`, ` in [0, 1)`; empty for any number.
    var referenceText: String {
        func text(_ bound: Double) -> String { bound == bound.rounded() && abs(bound) < 1e15 ? String(Int(bound)) : "\(bound)" }
        let lower = minimum.map { ("[", text($0)) } ?? exclusiveMinimum.map { ("(", text($0)) }
        switch (lower, exclusiveMaximum) {
        case let ((bracket, bound)?, maximum?): return " in \(bracket)\(bound), \(text(maximum)))"
        case let ((bracket, bound)?, nil): return (bracket == "[" ? " ≥ " : " > ") + bound
        case let (nil, maximum?): return " < \(text(maximum))"
        case (nil, nil): return ""
        }
    }
}

/// One key of a section: its name, how it is read (with its default and check), its line in `config.yaml` and what
/// the reference (`plexus config --reference`) says of it.
struct ConfigKey<Section> {
    let name: String
    /// Reads the key into `value`, or sets its default; throws a UserError naming file:line and key.
    let read: (inout Section, ConfigReader.Section) throws -> Void
    /// The resolved value, or nil to leave the key out of `config.yaml`.
    let write: (Section) -> ResolvedValue?
    /// The key's type, default and meaning in the reference.
    let documentation: KeyDocumentation
    /// The keys inside this one (a nested section's, or each item's of a list), for the reference.
    var nested: NestedKeys? = nil

    /// A key with any reader and writer (for values with their own syntax); `type` and `defaultText` say what the
    /// reference shows for them.
    static func custom(_ name: String, type: String, default defaultText: String,
                       read: @escaping (inout Section, ConfigReader.Section) throws -> Void,
                       write: @escaping (Section) -> ResolvedValue?, description: String) -> ConfigKey {
        ConfigKey(name: name, read: read, write: write,
                  documentation: KeyDocumentation(type: type, defaultText: defaultText, meaning: description))
    }

    /// A scalar key with a default that may depend on keys read before it (`defaultText` says how, for the
    /// reference); `writtenWhen` can leave it out.
    static func value<Value: ConfigScalar>(_ name: String, _ path: WritableKeyPath<Section, Value>,
                                           default defaultValue: @escaping (Section) -> Value, defaultText: String,
                                           writtenWhen: @escaping (Section) -> Bool = { _ in true },
                                           description: String) -> ConfigKey {
        ConfigKey(name: name, read: { value, section in
            value[keyPath: path] = try Value.read(name, from: section) ?? defaultValue(value)
        }, write: { writtenWhen($0) ? .scalar($0[keyPath: path].yamlText) : nil },
        documentation: KeyDocumentation(type: Value.referenceType, defaultText: defaultText, meaning: description))
    }

    /// A scalar key with a fixed default.
    static func value<Value: ConfigScalar>(_ name: String, _ path: WritableKeyPath<Section, Value>,
                                           default defaultValue: Value, description: String) -> ConfigKey {
        value(name, path, default: { _ in defaultValue }, defaultText: KeyDocumentation.code(defaultValue.yamlText),
              description: description)
    }

    /// An optional scalar key (absent or `null` means nil, written as `null`).
    static func optional<Value: ConfigScalar>(_ name: String, _ path: WritableKeyPath<Section, Value?>,
                                              default defaultValue: Value? = nil, description: String) -> ConfigKey {
        ConfigKey(name: name, read: { value, section in
            value[keyPath: path] = try Value.read(name, from: section) ?? defaultValue
        }, write: { .scalar($0[keyPath: path]?.yamlText ?? "null") },
        documentation: KeyDocumentation(type: Value.referenceType + " or `null`",
                                        defaultText: defaultValue.map { KeyDocumentation.code($0.yamlText) } ?? KeyDocumentation.none,
                                        meaning: description))
    }

    /// An integer key of at least `minimum`.
    static func integer(_ name: String, _ path: WritableKeyPath<Section, Int>, default defaultValue: Int,
                        minimum: Int, description: String) -> ConfigKey {
        ConfigKey(name: name, read: { value, section in
            value[keyPath: path] = try section.integer(name, minimum: minimum) ?? defaultValue
        }, write: { .scalar(String($0[keyPath: path])) },
        documentation: KeyDocumentation(type: "integer ≥ \(minimum)", defaultText: KeyDocumentation.code(String(defaultValue)),
                                        meaning: description))
    }

    /// An optional integer key of at least `minimum` (absent or `null` means `defaultValue`).
    static func integer(_ name: String, _ path: WritableKeyPath<Section, Int?>, default defaultValue: Int? = nil,
                        minimum: Int, description: String) -> ConfigKey {
        ConfigKey(name: name, read: { value, section in
            value[keyPath: path] = try section.integer(name, minimum: minimum) ?? defaultValue
        }, write: { .scalar($0[keyPath: path].map(String.init) ?? "null") },
        documentation: KeyDocumentation(type: "integer ≥ \(minimum) or `null`",
                                        defaultText: defaultValue.map { KeyDocumentation.code(String($0)) } ?? KeyDocumentation.none,
                                        meaning: description))
    }

    /// A number key in `range`, stored as `Value` (Double or Float); the default may depend on earlier keys
    /// (`defaultText` says how, for the reference).
    static func number<Value: ConfigScalar & BinaryFloatingPoint>(
        _ name: String, _ path: WritableKeyPath<Section, Value>, range: NumericRange,
        default defaultValue: @escaping (Section) -> Value, defaultText: String,
        writtenWhen: @escaping (Section) -> Bool = { _ in true }, description: String
    ) -> ConfigKey {
        ConfigKey(name: name, read: { value, section in
            let number = try section.number(name, minimum: range.minimum, exclusiveMinimum: range.exclusiveMinimum,
                                            exclusiveMaximum: range.exclusiveMaximum)
            value[keyPath: path] = number.map { Value($0) } ?? defaultValue(value)
        }, write: { writtenWhen($0) ? .scalar($0[keyPath: path].yamlText) : nil },
        documentation: KeyDocumentation(type: "number" + range.referenceText, defaultText: defaultText, meaning: description))
    }

    /// A number key in `range` with a fixed default.
    static func number<Value: ConfigScalar & BinaryFloatingPoint>(
        _ name: String, _ path: WritableKeyPath<Section, Value>, range: NumericRange, default defaultValue: Value,
        writtenWhen: @escaping (Section) -> Bool = { _ in true }, description: String
    ) -> ConfigKey {
        number(name, path, range: range, default: { _ in defaultValue }, defaultText: KeyDocumentation.code(defaultValue.yamlText),
               writtenWhen: writtenWhen, description: description)
    }

    /// An optional number key in `range` (absent or `null` means nil).
    static func number(_ name: String, _ path: WritableKeyPath<Section, Double?>, range: NumericRange,
                       description: String) -> ConfigKey {
        ConfigKey(name: name, read: { value, section in
            value[keyPath: path] = try section.number(name, minimum: range.minimum, exclusiveMinimum: range.exclusiveMinimum,
                                                      exclusiveMaximum: range.exclusiveMaximum)
        }, write: { .scalar($0[keyPath: path]?.yamlText ?? "null") },
        documentation: KeyDocumentation(type: "number" + range.referenceText + " or `null`", defaultText: KeyDocumentation.none,
                                        meaning: description))
    }

    /// A nested section that is off unless given (`training.early_stopping`); written as `null` when off.
    static func optionalSection<Nested: ConfigSection>(_ name: String, _ path: WritableKeyPath<Section, Nested?>,
                                                       description: String) -> ConfigKey {
        ConfigKey(name: name, read: { value, section in
            value[keyPath: path] = try section.value(name).map { _ in try Nested.read(try section.section(name)) }
        }, write: { $0[keyPath: path].map { .mapping($0.resolved) } ?? .scalar("null") },
        documentation: KeyDocumentation(type: "mapping or `null`", defaultText: "none (off)", meaning: description),
        nested: NestedKeys(Nested.self, separator: "."))
    }

    /// A nested section (`optimizer:` inside the root, `init:` inside `model:`).
    static func section<Nested: ConfigSection>(_ name: String, _ path: WritableKeyPath<Section, Nested>,
                                               description: String) -> ConfigKey {
        ConfigKey(name: name, read: { value, section in
            value[keyPath: path] = try Nested.read(try section.section(name))
        }, write: { .mapping($0[keyPath: path].resolved) },
        documentation: KeyDocumentation(type: "mapping", defaultText: NestedKeys.sectionDefault(Nested.self), meaning: description),
        nested: NestedKeys(Nested.self, separator: "."))
    }

    /// A required, non-empty list of sections (`model.layers`), written as one flow mapping per item.
    static func list<Nested: ConfigSection>(_ name: String, _ path: WritableKeyPath<Section, [Nested]>,
                                            description: String) -> ConfigKey {
        ConfigKey(name: name, read: { value, section in
            guard let trees = try section.sequence(name), !trees.isEmpty else {
                throw section.missing(name, ", a list of {" + Nested.keys.map(\.name).joined(separator: ", ") + "}")
            }
            value[keyPath: path] = try trees.enumerated().map { index, tree in
                try Nested.read(try section.element(name, index: index, tree: tree))
            }
        }, write: { .list($0[keyPath: path].map(\.inlineYAML)) },
        documentation: KeyDocumentation(type: "list of mappings", defaultText: KeyDocumentation.required, meaning: description),
        nested: NestedKeys(Nested.self, separator: "[]."))
    }
}
