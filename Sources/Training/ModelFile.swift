import Config
import Datasets
import Formats
import Foundation
import NeuralNet
import Support

/// Weights and biases on disk: safetensors in PyTorch's nn.Linear layout (`layers.{i}.weight` [out, in],
/// `layers.{i}.bias` [out], F32) after any nn.Embedding tables (`embedding.{column}.weight` [levels, dimension]),
/// with the architecture and resolved config in `__metadata__`.
enum ModelFile {
    /// The tensors of a network in safetensors order: every embedding table, then every layer's weight and bias.
    static func tensors(of network: Network) -> [TensorRecord] {
        let base = network.parameters.baseAddress!
        var records = network.embeddings.map { table in
            TensorRecord(name: embeddingTensorName(table), shape: [table.levels, table.dimension],
                         values: Array(UnsafeBufferPointer(start: base + table.offset, count: table.parameterCount)))
        }
        for (index, layer) in network.layers.enumerated() {
            records.append(TensorRecord(
                name: "layers.\(index).weight", shape: [layer.outputWidth, layer.inputWidth],
                values: Array(UnsafeBufferPointer(start: base + layer.weightOffset, count: layer.outputWidth * layer.inputWidth))))
            records.append(TensorRecord(
                name: "layers.\(index).bias", shape: [layer.outputWidth],
                values: Array(UnsafeBufferPointer(start: base + layer.biasOffset, count: layer.outputWidth))))
        }
        return records
    }

    /// The safetensors name of an embedding table, as PyTorch names a `ModuleDict` of `nn.Embedding`s called `embedding`.
    static func embeddingTensorName(_ table: EmbeddingTable) -> String { "embedding.\(table.name).weight" }

    /// Each embedding table of a loaded network: its column, levels, dimension and values [levels×dimension] row-major
    /// (for an exporter's lookup of the codes).
    static func embeddingTables(of network: Network) -> [(column: String, levels: Int, dimension: Int, values: [Float])] {
        network.embeddings.map { table in
            (table.name, table.levels, table.dimension,
             Array(UnsafeBufferPointer(start: network.parameters.baseAddress! + table.offset, count: table.parameterCount)))
        }
    }

    /// SHA-256 of every table, then every layer's weight then bias as float32 little-endian: the flat parameter buffer's bytes.
    static func parameterHash(of network: Network) -> String {
        var hasher = SHA256()
        hasher.update(UnsafeRawBufferPointer(network.parameters))
        return SHA256.hex(hasher.finalize())
    }

    /// Metadata describing the network so `evaluate` and `predict` need nothing else.
    static func metadata(network: Network, config: TrainingConfig, normalization: NormalizationRecord) -> [String: String] {
        let layers = network.layers.map { "{\"units\":\($0.outputWidth),\"activation\":\"\($0.activation.rawValue)\"}" }
        var metadata = [
            "format": "pt",
            "plexus.input_width": String(network.inputWidth),
            "plexus.layers": "[" + layers.joined(separator: ",") + "]",
            "plexus.loss": config.loss.kind.rawValue,
            "plexus.config": config.yaml,
            "plexus.normalization": normalization.mode.rawValue,
        ]
        if normalization.mode == .standardize {
            metadata["plexus.feature_offset"] = jsonArray(normalization.offset)
            metadata["plexus.feature_scale"] = jsonArray(normalization.scale)
        }
        if !normalization.featureNames.isEmpty { metadata["plexus.features"] = JSON.text(normalization.featureNames) }
        addTargetMetadata(to: &metadata, loss: config.loss, normalization: normalization)
        addTableMetadata(to: &metadata, normalization: normalization)
        return metadata
    }

    static func jsonArray(_ values: [Float]) -> String {
        "[" + values.map { "\($0)" }.joined(separator: ",") + "]"
    }

    /// Writes `network` atomically to `path`, with `extra` metadata beside the model's own.
    static func write(_ network: Network, config: TrainingConfig, normalization: NormalizationRecord,
                             metadata extra: [String: String] = [:], to path: String) throws {
        try SafeTensors.write(tensors(of: network), metadata: metadata(network: network, config: config, normalization: normalization)
            .merging(extra) { _, added in added }, to: path)
    }

    /// Copies tensors named as `tensors(of:)` produces into `network`; a missing or wrongly shaped tensor is a user error.
    static func load(_ tensors: [TensorRecord], into network: Network, source: String) throws {
        var byName: [String: TensorRecord] = [:]
        for tensor in tensors { byName[tensor.name] = tensor }
        let base = network.parameters.baseAddress!
        let tables = network.embeddings.map { (embeddingTensorName($0), [$0.levels, $0.dimension], $0.offset) }
        let layers = network.layers.enumerated().flatMap { index, layer in
            [("layers.\(index).weight", [layer.outputWidth, layer.inputWidth], layer.weightOffset),
             ("layers.\(index).bias", [layer.outputWidth], layer.biasOffset)]
        }
        for (name, shape, offset) in tables + layers {
            guard let tensor = byName[name] else {
                throw UserError("\(source): tensor \(name) is missing (the model needs shape \(shape))")
            }
            guard tensor.shape == shape else {
                throw UserError("\(source): tensor \(name) has shape \(tensor.shape), the model needs \(shape)")
            }
            tensor.values.withUnsafeBufferPointer { (base + offset).update(from: $0.baseAddress!, count: $0.count) }
        }
    }

    /// A saved model: the network with its weights, how inputs and targets were normalized, the loss, and the
    /// resolved config.
    struct Saved {
        let network: Network
        let loss: LossOptions
        let normalization: NormalizationRecord
        let config: TrainingConfig?
    }

    /// Reads a model written by `write` (or a checkpoint), rebuilding the network from its metadata.
    static func read(path: String, threads: Int) throws -> Saved {
        let (tensors, metadata) = try SafeTensors.read(path: path)
        return try decode(tensors: tensors, metadata: metadata, path: path, threads: threads)
    }

    /// The model in a file's tensors and metadata, already read from `path`.
    static func decode(tensors: [TensorRecord], metadata: [String: String], path: String, threads: Int) throws -> Saved {
        func field(_ key: String) throws -> String {
            guard let value = metadata[key] else {
                throw UserError("\(path): not a plexus model (no \(key) in __metadata__)")
            }
            return value
        }
        guard let inputWidth = Int(try field("plexus.input_width")), inputWidth > 0 else {
            throw UserError("\(path): corrupt plexus metadata: plexus.input_width")
        }
        guard let layerData = try field("plexus.layers").data(using: .utf8),
              let layerList = try? JSONSerialization.jsonObject(with: layerData) as? [[String: Any]], !layerList.isEmpty else {
            throw UserError("\(path): corrupt plexus metadata: plexus.layers")
        }
        var specs: [(units: Int, activation: Activation)] = []
        for entry in layerList {
            guard let units = entry["units"] as? Int, units > 0, let name = entry["activation"] as? String,
                  let activation = Activation(rawValue: name) else {
                throw UserError("\(path): corrupt plexus metadata: plexus.layers")
            }
            specs.append((units, activation))
        }
        guard let lossKind = Loss(rawValue: try field("plexus.loss")) else {
            throw UserError("\(path): corrupt plexus metadata: plexus.loss")
        }
        guard let mode = Normalization(rawValue: try field("plexus.normalization")) else {
            throw UserError("\(path): corrupt plexus metadata: plexus.normalization")
        }
        var normalization = NormalizationRecord(mode: mode, offset: [], scale: [])
        if mode == .standardize {
            normalization.offset = try floatArray(metadata, "plexus.feature_offset", count: inputWidth, path: path)
            normalization.scale = try floatArray(metadata, "plexus.feature_scale", count: inputWidth, path: path)
        }
        if let text = metadata["plexus.features"] {
            guard let names = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String], names.count == inputWidth else {
                throw UserError("\(path): corrupt plexus metadata: plexus.features")
            }
            normalization.featureNames = names
        }
        let loss = try readTargetMetadata(metadata, lossKind: lossKind, outputWidth: specs.last!.units,
                                          into: &normalization, path: path)
        try readTableMetadata(metadata, into: &normalization, inputWidth: inputWidth, path: path)
        let network = Network(inputWidth: inputWidth, layers: specs, embeddings: normalization.encoding?.embeddings ?? [],
                              threads: threads)
        try load(tensors, into: network, source: path)
        let config = metadata["plexus.config"].flatMap { try? TrainingConfig.parse($0, source: path) }
        return Saved(network: network, loss: loss, normalization: normalization, config: config)
    }
}
