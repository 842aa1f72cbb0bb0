import Foundation

/// The one JSON writer of the project (summary.json, metrics.jsonl, exit.json, command output, file metadata).
public enum JSON {
    /// `value` as JSON text with sorted keys; `pretty` for files people read. Non-finite numbers become strings.
    public static func text<T: Encodable>(_ value: T, pretty: Bool = false) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity",
                                                                      nan: "NaN")
        // Encoding plain structs, arrays and numbers cannot fail once non-finite numbers are handled.
        guard let data = try? encoder.encode(value) else { preconditionFailure("JSON.text: \(T.self) did not encode") }
        return String(decoding: data, as: UTF8.self)
    }
}

/// A coding key made at run time (for metric names such as `test_accuracy`).
public struct NamedKey: CodingKey {
    public let stringValue: String
    public var intValue: Int? { nil }
    public init(_ name: String) { stringValue = name }
    public init?(stringValue: String) { self.stringValue = stringValue }
    public init?(intValue: Int) { nil }
}

extension Encoder {
    /// Encodes one JSON object: `fields` in order, then the keys of `flattened` (an object's own keys) beside them.
    public func encodeObject(_ fields: KeyValuePairs<String, any Encodable>, flattened: (any Encodable)? = nil) throws {
        var container = container(keyedBy: NamedKey.self)
        for (name, value) in fields { try value.encode(to: container.superEncoder(forKey: NamedKey(name))) }
        try flattened?.encode(to: self)
    }
}
