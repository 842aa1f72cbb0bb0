import Datasets
import Support
import Tables

// The keys of `data:` that say how a table's columns become features (the column rules, Sources/Tables): categories,
// gaps and their fills, the sample-weight column, and the quantiles of `normalize: quantile`.

extension TrainingConfig.DataSection {
    static let tableKeys: [ConfigKey<Self>] = [
        .custom("categorical", type: "list of column names, or a mapping of names to `one_hot` or `{embedding: N}`",
                default: "none", read: readCategorical, write: writeCategorical,
                description: "Text columns whose values are categories: a list (`[island, sex]`) one-hot encodes each, a "
                    + "mapping says how per column (`{zip: {embedding: 8}, island: one_hot}`): `{embedding: N}` (N ≥ 1) "
                    + "learns a table of N values per level, trained with the network (PyTorch's `nn.Embedding`, drawn "
                    + "from N(0, 1)), whose row for the cell's level goes to the first layer. The levels come from the "
                    + "training rows, sorted; a value never seen in training (or rarer than `data.rare_category_count`) "
                    + "is the level \"other\"; an empty cell is a level of its own."),
        .custom("rare_category_count", type: "integer ≥ 1 or `null`", default: KeyDocumentation.none, read: { data, section in
            data.rules.rareCategoryCount = try section.integer("rare_category_count", minimum: 1)
        }, write: { $0.rules.rareCategoryCount.map { .scalar(String($0)) } },
        description: "Levels of a categorical column seen fewer times than this in the training rows join \"other\"."),
        .custom("missing_values", type: "list of strings", default: KeyDocumentation.code("[\"\", NA, NaN, nan, null, ?]"),
                read: { data, section in
            guard let items = try section.sequence("missing_values") else { return }
            data.rules.missingValues = try items.map { item in
                guard case let .scalar(text, _, _) = item else {
                    throw UserError("\(section.location(item, "missing_values")): expected a list of strings")
                }
                return text
            }
        }, write: { data in
            data.rules.missingValues == ColumnRules.defaultMissingValues ? nil
                : .scalar("[" + data.rules.missingValues.map(quotedString).joined(separator: ", ") + "]")
        }, description: "The cells that mean \"no value\" (compared after trimming spaces); a NaN in npz data is one too."),
        .custom("missing", type: "one of `error`, `mean`, `median`, `zero`", default: "`error`", read: { data, section in
            data.rules.missing = try section.choice("missing", MissingStrategy.self) ?? .error
        }, write: { $0.rules.missing == .error ? nil : .scalar($0.rules.missing.rawValue) },
        description: "What a gap in a numeric feature column becomes: `error` stops with its file and line; `mean`, "
            + "`median` (of the training rows) or `zero` fill it, as scikit-learn's `SimpleImputer`. A missing target is "
            + "always an error."),
        .custom("missing_indicator", type: "boolean", default: "`false`", read: { data, section in
            data.rules.missingIndicator = try section.boolean("missing_indicator") ?? false
        }, write: { $0.rules.missingIndicator ? .scalar("true") : nil },
        description: "Adds one 0/1 feature per numeric column that had gaps in the training rows (1 where the cell was a gap)."),
        .custom("sample_weight", type: "string or `null`", default: KeyDocumentation.none, read: { data, section in
            data.rules.sampleWeight = try section.string("sample_weight")
        }, write: { $0.rules.sampleWeight.map { .scalar(quotedString($0)) } },
        description: "A numeric column holding each row's weight in the loss and the metrics (a weight ≥ 0, not a feature)."),
        .custom("quantiles", type: "integer ≥ 2", default: "`1000`", read: { data, section in
            data.quantileCount = try section.integer("quantiles", minimum: 2) ?? 1000
        }, write: { $0.normalize == .quantile ? .scalar(String($0.quantileCount)) : nil },
        description: "`normalize: quantile` only: how many quantiles of each feature are fitted on the training rows "
            + "(scikit-learn's `n_quantiles`, at most the number of rows)."),
    ]

    static func readCategorical(_ data: inout Self, _ section: ConfigReader.Section) throws {
        data.rules.categorical = []
        guard let tree = section.value("categorical") else { return }
        let location = section.location(tree, "categorical")
        var columns: [(name: String, encoding: CategoricalEncoding)] = []
        func add(_ name: String, _ encoding: CategoricalEncoding, _ place: String) throws {
            guard !name.isEmpty else { throw UserError("\(place): expected column names") }
            guard !columns.contains(where: { $0.name == name }) else {
                throw UserError("\(place): \(quotedForMessage(name)) is listed twice")
            }
            columns.append((name, encoding))
        }
        switch tree {
        case let .sequence(items, _):
            for item in items {
                guard case let .scalar(name, _, _) = item else { throw UserError("\(section.location(item, "categorical")): expected a column name") }
                try add(name, .oneHot, location)
            }
        case let .mapping(pairs, _):
            for (name, value) in pairs {
                let place = section.location(value, "categorical.\(name)")
                try add(name, try categoricalEncoding(value, place: place, section: section, path: "categorical.\(name)"), place)
            }
        default: throw UserError("\(location): expected a list of column names or a mapping of names to one_hot or {embedding: N}")
        }
        if let target = columns.first(where: { data.targets?.contains($0.name) ?? false }) {
            throw UserError("\(location): \(quotedForMessage(target.name)) is a target (data.targets); a target's classes "
                + "need no listing")
        }
        guard columns.isEmpty || data.format == .csv || data.format == .parquet else {
            throw UserError("\(location): categories are columns of CSV or Parquet data, not \(data.format.rawValue)")
        }
        data.rules.categorical = columns
    }

    /// One column's encoding in the mapping form: `one_hot` or `{embedding: N}` with N ≥ 1.
    private static func categoricalEncoding(_ value: ConfigTree, place: String, section: ConfigReader.Section,
                                            path: String) throws -> CategoricalEncoding {
        let expected = "\(place): expected one_hot or {embedding: N} with N an integer ≥ 1"
        switch value {
        case let .scalar(text, _, _) where text == "one_hot": return .oneHot
        case .mapping:
            let entry = try ConfigReader.Section(reader: section.reader, path: section.childPath(path), tree: value)
            guard let dimension = try entry.integer("embedding", minimum: 1) else { throw UserError(expected) }
            try entry.finish()
            return .embedding(dimension: dimension)
        default: throw UserError(expected)
        }
    }

    static func writeCategorical(_ data: Self) -> ResolvedValue? {
        let columns = data.rules.categorical
        if columns.isEmpty { return nil }
        if columns.allSatisfy({ $0.encoding == .oneHot }) {
            return .scalar("[" + columns.map { quotedString($0.name) }.joined(separator: ", ") + "]")
        }
        return .scalar("{" + columns.map { column in
            switch column.encoding {
            case .oneHot: return "\(quotedString(column.name)): one_hot"
            case let .embedding(dimension): return "\(quotedString(column.name)): {embedding: \(dimension)}"
            }
        }.joined(separator: ", ") + "}")
    }
}
