// The reference of every config key (`plexus config --reference`, docs/configuration.md), built from the key tables:
// a key's type and default come from the factory that declares it, its meaning from the entry's `description`.

/// What the reference says of one key.
struct KeyDocumentation {
    /// The values it takes, in Markdown: `integer ≥ 1`, ``one of `relu`, `tanh` ``.
    let type: String
    /// Its default, in Markdown: `` `10` ``, `required`, `none`.
    let defaultText: String
    /// What it does.
    let meaning: String

    /// The default of a key that has none.
    static let required = "required"
    /// The default of a key that is unset unless given (`null` in the resolved config).
    static let none = "none"

    /// `text` as inline code.
    static func code(_ text: String) -> String { "`\(text)`" }
}

/// The keys inside a key, for the reference: a section's (`model.init.weights`) or each list item's
/// (`model.layers[].units`).
struct NestedKeys {
    /// What joins the key's name to theirs: `.`, or `[].` for the items of a list.
    let separator: String
    /// Their rows, named from the nested section down.
    let rows: () -> [ReferenceRow]

    init<Nested: ConfigSection>(_ type: Nested.Type, separator: String) {
        self.separator = separator
        rows = { Nested.referenceRows }
    }

    /// A section's default: required when one of its keys is, else what its keys default to.
    static func sectionDefault<Nested: ConfigSection>(_ type: Nested.Type) -> String {
        Nested.keys.contains { $0.documentation.defaultText == KeyDocumentation.required }
            ? KeyDocumentation.required : "its keys' defaults"
    }
}

/// One row of the reference: a key's dotted name and what is said of it.
struct ReferenceRow {
    let name: String
    let documentation: KeyDocumentation
}

extension ConfigSection {
    /// Every key of the section and, after each nested one, its keys, with dotted names from this section down.
    static var referenceRows: [ReferenceRow] {
        keys.flatMap { key -> [ReferenceRow] in
            let own = ReferenceRow(name: key.name, documentation: key.documentation)
            guard let nested = key.nested else { return [own] }
            return [own] + nested.rows().map {
                ReferenceRow(name: key.name + nested.separator + $0.name, documentation: $0.documentation)
            }
        }
    }
}

extension TrainingConfig {
    /// The dotted name of every key the reference lists (`training.early_stopping.metric`, `model.layers[].units`).
    public static var keyNames: [String] { referenceRows.map(\.name) }

    /// The Markdown reference of every key: its dotted name, type, default and meaning, one table per section.
    public static var reference: String {
        let rows = referenceRows
        var lines = referenceIntroduction + ["", "## Top level", ""] + table(rows.filter { !$0.name.contains(".") })
        for key in keys where key.nested != nil {
            lines += ["", "## `\(key.name)`", "", key.documentation.meaning, ""]
            lines += table(rows.filter { $0.name.hasPrefix(key.name + ".") })
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private static let referenceIntroduction = [
        "# Configuration",
        "",
        "A run is described by one YAML file (`plexus train CONFIG.yaml`). It is decoded strictly: a key that is not listed",
        "here, or a value of the wrong type or out of range, stops the command before any work with one line naming the",
        "file, the line and the dotted key (exit status 2).",
        "",
        "`--set dotted.key=value` overrides a key (repeatable; on `plexus train`, `plexus config` and `plexus bench step`).",
        "The value is parsed as YAML: `--set training.epochs=3`, `--set optimizer.lr=3e-4`,",
        "`--set 'model.layers=[{units: 64, activation: relu}, {units: 10}]'`.",
        "",
        "`plexus config CONFIG [--set dotted.key=value ...]` prints the resolved config, every default spelled out, exactly",
        "as a run writes it to `RUN_DIR/config.yaml`, or the config's first mistake; it trains nothing. The resolved config",
        "is itself a config that gives the same run.",
        "",
        "A minimal config names the training data and the layers (the input width comes from the data, the last layer's",
        "units are the number of classes or targets):",
        "",
        "```yaml",
        "data: {train: my-data.csv}",
        "model: {layers: [{units: 64, activation: relu}, {units: 3}]}",
        "```",
        "",
        "In the tables below `required` keys have no default, and `none` means unset (`null` in the resolved config).",
        "This page is the output of `plexus config --reference`, generated from the declarations of the keys.",
    ]

    /// A Markdown table of `rows`.
    private static func table(_ rows: [ReferenceRow]) -> [String] {
        func cell(_ text: String) -> String { text.replacingOccurrences(of: "|", with: "\\|") }
        return ["| key | type | default | meaning |", "| --- | --- | --- | --- |"] + rows.map { row in
            let documentation = row.documentation
            return "| `\(row.name)` | \(cell(documentation.type)) | \(cell(documentation.defaultText)) | \(cell(documentation.meaning)) |"
        }
    }
}
