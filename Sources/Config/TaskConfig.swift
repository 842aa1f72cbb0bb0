import NeuralNet
import Support

// The keys that say what is learned: `loss` (a name, or a mapping with options), `data.targets`,
// `data.normalize_targets`, and the data format a file name implies.

extension LossOptions: ConfigSection {
    static let keys: [ConfigKey<Self>] = [
        .value("name", \.kind, default: .crossEntropy,
               description: "`cross_entropy`: softmax over the outputs, one integer class per row; `mse`, `l1`, `huber`: "
                   + "one output per numeric target; `binary_cross_entropy`: one logit per 0/1 label (multi-label too). "
                   + "PyTorch's losses, the mean over every output."),
        .custom("delta", type: "number > 0", default: "`1.0`", read: { loss, section in
            loss.delta = 1
            guard let delta = try section.number("delta", exclusiveMinimum: 0) else { return }
            guard loss.kind == .huber else {
                throw UserError("\(section.location(section.tree, "delta")): only huber takes a delta (the loss is \(loss.kind.rawValue))")
            }
            loss.delta = Float(delta)
        }, write: { $0.kind == .huber ? .scalar($0.delta.yamlText) : nil },
        description: "huber only: the error up to which the loss is squared, linear beyond."),
        .custom("class_weights", type: "`balanced` or a list of numbers ≥ 0", default: KeyDocumentation.none,
                read: readClassWeights, write: { loss in
            switch loss.classWeights {
            case nil: return nil
            case .balanced: return .scalar("balanced")
            case let .given(weights): return .scalar("[" + weights.map(\.yamlText).joined(separator: ", ") + "]")
            }
        }, description: "cross_entropy only: each row's loss weighs its class's weight, the mean is weighted (PyTorch's "
            + "`CrossEntropyLoss(weight=)`); `balanced` gives each class rows / (classes × its rows in the training data), "
            + "as scikit-learn. Weights apply to the training loss; evaluation metrics stay unweighted."),
    ]

    static func readClassWeights(_ loss: inout Self, _ section: ConfigReader.Section) throws {
        loss.classWeights = nil
        guard let tree = section.value("class_weights") else { return }
        let location = section.location(tree, "class_weights")
        guard loss.kind == .crossEntropy else {
            throw UserError("\(location): only cross_entropy takes class weights (the loss is \(loss.kind.rawValue))")
        }
        switch tree {
        case let .scalar(text, _, _) where text == "balanced": loss.classWeights = .balanced
        case let .sequence(items, _):
            loss.classWeights = .given(try items.map { item in
                guard case let .scalar(text, _, _) = item, let value = Float(text), value.isFinite, value >= 0 else {
                    throw UserError("\(section.location(item, "class_weights")): expected numbers ≥ 0, one per class")
                }
                return value
            })
        default: throw UserError("\(location): expected balanced or a list of numbers ≥ 0, one per class")
        }
    }
    static let unread = LossOptions(kind: .crossEntropy)
}

extension ConfigKey {
    /// A nested section that may also be written as just its name: `loss: mse` reads as `loss: {name: mse}`, and is
    /// written back that way when no other key of it is written.
    static func sectionOrName<Nested: ConfigSection>(_ name: String, _ path: WritableKeyPath<Section, Nested>,
                                                     nameKey: String = "name", description: String) -> ConfigKey {
        let nameDefault = Nested.keys.first { $0.name == nameKey }?.documentation.defaultText ?? KeyDocumentation.required
        return ConfigKey(name: name, read: { value, section in
            if let tree = section.value(name), case .scalar = tree {
                let mapping = ConfigTree.mapping([(nameKey, tree)], line: tree.line)
                value[keyPath: path] = try Nested.read(try ConfigReader.Section(reader: section.reader, path: section.childPath(name),
                                                                                tree: mapping))
            } else {
                value[keyPath: path] = try Nested.read(try section.section(name))
            }
        }, write: { value in
            let nested = value[keyPath: path]
            let resolved = nested.resolved
            if resolved.count == 1, resolved[0].0 == nameKey { return resolved[0].1 }
            return .scalar(nested.inlineYAML)
        }, documentation: KeyDocumentation(type: "a name or a mapping", defaultText: nameDefault, meaning: description),
        nested: NestedKeys(Nested.self, separator: "."))
    }
}

extension TrainingConfig.DataSection {
    /// `data.targets`: a list of distinct names; CSV and Parquet default to `[label]`, IDX takes none.
    static func readTargets(_ data: inout Self, _ section: ConfigReader.Section) throws {
        data.targets = data.format == .csv || data.format == .parquet ? ["label"] : nil
        guard let items = try section.sequence("targets") else { return }
        let location = section.location(section.value("targets"), "targets")
        guard data.format != .idx else {
            throw UserError("\(location): IDX data has one label per image; data.targets is for CSV and Parquet columns and "
                + "the columns of y in npz, npy and HDF5 data")
        }
        guard !items.isEmpty else { throw UserError("\(location): name at least one target") }
        var names: [String] = []
        for item in items {
            guard case let .scalar(name, _, _) = item, !name.isEmpty else {
                throw UserError("\(section.location(item, "targets")): expected a list of column names")
            }
            guard !names.contains(name) else { throw UserError("\(location): \(quotedForMessage(name)) is listed twice") }
            names.append(name)
        }
        data.targets = names
    }

    /// The resolved `data.targets` line (left out when there are no names).
    static func writeTargets(_ data: Self) -> ResolvedValue? {
        data.targets.map { .scalar("[" + $0.map(quotedString).joined(separator: ", ") + "]") }
    }
}
