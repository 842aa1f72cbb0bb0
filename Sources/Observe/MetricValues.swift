import Support

/// Named metric values in the order they are reported (`loss`, then `accuracy`, ...).
public struct MetricValues: Equatable {
    public private(set) var entries: [(name: String, value: Double)]

    /// Values in the given order.
    public init(_ entries: [(name: String, value: Double)] = []) { self.entries = entries }

    /// Adds one value at the end.
    public mutating func append(_ name: String, _ value: Double) { entries.append((name, value)) }

    /// The value named `name`, if present.
    public subscript(name: String) -> Double? { entries.first { $0.name == name }?.value }

    /// The same values with every name prefixed (`test_` + `loss` is the metrics.jsonl key `test_loss`).
    public func prefixed(_ prefix: String) -> MetricValues {
        MetricValues(entries.map { ("\(prefix)_\($0.name)", $0.value) })
    }

    public static func == (left: MetricValues, right: MetricValues) -> Bool {
        left.entries.map(\.name) == right.entries.map(\.name) && left.entries.map(\.value) == right.entries.map(\.value)
    }
}

extension MetricValues: Encodable {
    /// Encodes the values as keys of the enclosing object (flattened beside its other fields).
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: NamedKey.self)
        for (name, value) in entries { try container.encode(value, forKey: NamedKey(name)) }
    }
}
