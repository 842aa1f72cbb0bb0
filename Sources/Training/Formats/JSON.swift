import Foundation

/// The one JSON writer of the project (summary.json, metrics.jsonl, command output, file metadata).
enum JSON {
    /// `value` as JSON text with sorted keys; `pretty` for files people read. Non-finite numbers become strings.
    static func text<T: Encodable>(_ value: T, pretty: Bool = false) -> String {
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
struct NamedKey: CodingKey {
    let stringValue: String
    var intValue: Int? { nil }
    init(_ name: String) { stringValue = name }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension MetricValues: Encodable {
    /// Encodes the values as keys of the enclosing object (flattened beside its other fields).
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: NamedKey.self)
        for (name, value) in entries { try container.encode(value, forKey: NamedKey(name)) }
    }
}

extension Encoder {
    /// Encodes one JSON object: `fields` in order, then `metrics` as further keys beside them.
    func encodeObject(_ fields: KeyValuePairs<String, any Encodable>, metrics: MetricValues = MetricValues()) throws {
        var container = container(keyedBy: NamedKey.self)
        for (name, value) in fields { try value.encode(to: container.superEncoder(forKey: NamedKey(name))) }
        try metrics.encode(to: self)
    }
}
