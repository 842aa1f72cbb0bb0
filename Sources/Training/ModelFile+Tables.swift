import Datasets
import Foundation
import Support
import Tables

// The model file's column rules, for `evaluate`, `predict` and exporters (docs/formats.md, "Column rules"):
// `plexus.columns` is a JSON object
//   {"columns": [COLUMN, ...], "missing_values": [TEXT, ...], "missing": "error|mean|median|zero",
//    "targets": [NAME, ...], "sample_weight": NAME|null, "class_names": [NAME, ...]|null}
// with each feature COLUMN in file order either
//   {"name": N, "kind": "numeric", "fill": NUMBER|null, "indicator": BOOL}
//   {"name": N, "kind": "one_hot", "levels": [TEXT, ...], "missing_level": BOOL, "folded": [TEXT, ...]}
//   {"name": N, "kind": "embedding", "dimension": D, "levels": ..., "missing_level": ..., "folded": ...}
// (an embedding's table is the tensor embedding.N.weight, [codes, D]; its code is the last inputs' own)
// and `plexus.quantiles` (with `plexus.normalization` quantile) one list of quantile values per network input
// (empty for an input the transform leaves alone).

extension ModelFile {
    /// Adds the column rules and quantiles of `normalization` to a model file's metadata.
    static func addTableMetadata(to metadata: inout [String: String], normalization: NormalizationRecord) {
        if let encoding = normalization.encoding { metadata["plexus.columns"] = jsonText(encoding.jsonObject) }
        if normalization.mode == .quantile {
            // Written by hand: Swift's shortest round-trip digits, so the quantiles read back bit for bit.
            metadata["plexus.quantiles"] = "[" + normalization.quantiles.map { quantiles in
                "[" + (quantiles.values == [0] ? [] : quantiles.values).map { "\($0)" }.joined(separator: ",") + "]"
            }.joined(separator: ",") + "]"
        }
    }

    /// Reads what `addTableMetadata` wrote into `normalization`; `inputWidth` is the network's.
    static func readTableMetadata(_ metadata: [String: String], into normalization: inout NormalizationRecord, inputWidth: Int,
                                  path: String) throws {
        func parsed(_ key: String) throws -> Any? {
            guard let text = metadata[key] else { return nil }
            guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]) else {
                throw UserError("\(path): corrupt plexus metadata: \(key)")
            }
            return object
        }
        if let object = try parsed("plexus.columns") {
            guard let encoding = TableEncoding(jsonObject: object), encoding.featureCount == inputWidth else {
                throw UserError("\(path): corrupt plexus metadata: plexus.columns")
            }
            normalization.encoding = encoding
        }
        if normalization.mode == .quantile {
            guard let lists = metadata["plexus.quantiles"].flatMap(numberLists), lists.count == inputWidth else {
                throw UserError("\(path): corrupt plexus metadata: plexus.quantiles")
            }
            normalization.quantiles = lists.map { FeatureQuantiles(values: $0) }
        }
    }

    /// The lists of a JSON list of number lists (`[[1.5,2],[]]`), each number read exactly by `Double.init`
    /// (Foundation's JSON reader may round the last digit); nil for any other text.
    static func numberLists(_ text: String) -> [[Double]]? {
        let compact = text.filter { !$0.isWhitespace }
        guard compact.hasPrefix("["), compact.hasSuffix("]") else { return nil }
        let inner = compact.dropFirst().dropLast()
        guard !inner.isEmpty else { return [] }
        guard inner.hasPrefix("["), inner.hasSuffix("]") else { return nil }
        var lists: [[Double]] = []
        for part in inner.dropFirst().dropLast().components(separatedBy: "],[") {
            guard !part.contains("[") && !part.contains("]") else { return nil }
            if part.isEmpty { lists.append([]); continue }
            var values: [Double] = []
            for field in part.split(separator: ",", omittingEmptySubsequences: false) {
                guard let value = Double(field), value.isFinite else { return nil }
                values.append(value)
            }
            lists.append(values)
        }
        return lists
    }

    private static func jsonText(_ object: Any) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .fragmentsAllowed]) else {
            preconditionFailure("ModelFile: metadata that is not JSON")
        }
        return String(decoding: data, as: UTF8.self)
    }
}

extension TableEncoding {
    /// The encoding as the model file's `plexus.columns` holds it.
    var jsonObject: [String: Any] {
        let columns: [[String: Any]] = self.columns.map { column in
            switch column.kind {
            case let .numeric(fill, indicator):
                return ["name": column.name, "kind": "numeric", "fill": fill.map { Double($0) as Any } ?? NSNull(), "indicator": indicator]
            case let .categorical(levels):
                var entry: [String: Any] = ["name": column.name, "kind": "one_hot", "levels": levels.levels,
                                            "missing_level": levels.missingLevel, "folded": levels.folded]
                if case let .embedding(dimension) = levels.encoding { (entry["kind"], entry["dimension"]) = ("embedding", dimension) }
                return entry
            }
        }
        return ["columns": columns, "missing_values": missingValues, "missing": missing.rawValue, "targets": targets,
                "sample_weight": sampleWeight ?? NSNull(), "class_names": classNames ?? NSNull()]
    }

    /// An encoding from `plexus.columns`, nil when it is not one.
    init?(jsonObject: Any) {
        guard let object = jsonObject as? [String: Any], let list = object["columns"] as? [[String: Any]],
              let missingValues = object["missing_values"] as? [String],
              let missing = (object["missing"] as? String).flatMap(MissingStrategy.init(rawValue:)),
              let targets = object["targets"] as? [String], !targets.isEmpty else { return nil }
        var columns: [FeatureColumn] = []
        for entry in list {
            guard let name = entry["name"] as? String else { return nil }
            switch entry["kind"] as? String {
            case "numeric":
                guard let indicator = entry["indicator"] as? Bool else { return nil }
                let fill = entry["fill"] as? Double
                guard fill != nil || entry["fill"] is NSNull else { return nil }
                columns.append(FeatureColumn(name: name, kind: .numeric(fill: fill.map { Float($0) }, indicator: indicator)))
            case let kind? where kind == "one_hot" || kind == "embedding":
                guard let levels = entry["levels"] as? [String], let missingLevel = entry["missing_level"] as? Bool else { return nil }
                var encoding = CategoricalEncoding.oneHot
                if kind == "embedding" {
                    guard let dimension = entry["dimension"] as? Int, dimension >= 1 else { return nil }
                    encoding = .embedding(dimension: dimension)
                }
                columns.append(FeatureColumn(name: name, kind: .categorical(CategoricalLevels(
                    levels: levels, missingLevel: missingLevel, encoding: encoding, folded: entry["folded"] as? [String] ?? []))))
            default: return nil
            }
        }
        self.init(columns: columns, missingValues: missingValues, missing: missing, targets: targets,
                  sampleWeight: object["sample_weight"] as? String, classNames: object["class_names"] as? [String])
    }
}
