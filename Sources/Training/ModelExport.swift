import Datasets
import NeuralNet
import ONNX
import Support

/// The file formats `plexus export` writes.
public enum ExportFormat: String, CaseIterable, Sendable {
    case onnx
}

extension Commands {
    /// `plexus export`: the whole inference path of the model at `location` (a run directory or model file, as
    /// `predict` takes it) written to `output` in `format`; returns a line saying what it wrote.
    public static func export(model location: String, format: ExportFormat, output: String, producerVersion: String) throws -> String {
        let (path, choice, saved, task) = try loadModel(location)
        let exported = try ModelExport.onnxGraph(of: saved, task: task, source: path)
        try FileIO.writeAtomically(exported.graph.modelBytes(producer: "plexus", producerVersion: producerVersion), to: output)
        reportModelChoice(path: path, choice: choice)
        let inputs = exported.inputs.count == 1 ? "input \(exported.inputs[0])"
            : "\(exported.inputs.count) inputs (\(exported.inputs.prefix(3).joined(separator: ", "))\(exported.inputs.count > 3 ? ", ..." : ""))"
        return "wrote \(output): ONNX opset \(ONNXGraph.opsetVersion), \(inputs), outputs \(exported.outputs.joined(separator: ", "))"
    }
}

/// A saved model as an ONNX graph.
enum ModelExport {
    /// The graph's first output: class probabilities, or targets in their own units for regression.
    static func outputName(of task: LearningTask) -> String { task.isClassification ? "probabilities" : "predictions" }

    /// The model's inference path: its raw feature columns (a table model's as `addTableInputs` takes them, else one
    /// float32 [N, 1] input per named column, else one `x` [N, features]), the normalization, every layer, and the
    /// head; `predicted_class` follows the probabilities of single-target classification (the class name, string
    /// [N], when the class column held text, else its index, int64 [N]). A feature column named like an output is a
    /// `UserError` naming `source` (ONNX values have one name each).
    static func onnxGraph(of saved: ModelFile.Saved, task: LearningTask,
                          source: String) throws -> (graph: ONNXGraph, inputs: [String], outputs: [String]) {
        let network = saved.network, normalization = saved.normalization, encoding = normalization.encoding
        let probabilities = outputName(of: task), predictedClass = "predicted_class"
        let names = encoding?.columns.map(\.name)
            ?? (normalization.featureNames.count == network.inputWidth ? normalization.featureNames : [])
        if let clash = names.first(where: { $0 == probabilities || $0 == predictedClass }) {
            throw UserError("\(source): the feature column \(clash) has the name of an ONNX output; rename the column and train again")
        }
        var graph = ONNXGraph(name: "plexus", reserving: [probabilities, predictedClass])
        let batch = ONNXDimension.named("N")
        let inputs: [String]
        var x: String
        var embedded: [String] = []
        // The inputs normalization sees: all, or a table's before its embedding codes.
        let normalizedWidth = encoding.map { $0.featureCount - $0.embeddings.count } ?? network.inputWidth
        func normalized<Value>(_ values: [Value]) -> [Value] {
            values.count > normalizedWidth ? Array(values.prefix(normalizedWidth)) : values
        }
        if let encoding {
            let plain: [String]
            (plain, embedded, inputs) = addTableInputs(encoding, tables: ModelFile.embeddingTables(of: network), to: &graph, batch: batch)
            // Only embedding columns: nothing to normalize.
            x = graph.addConcatenation(ofColumns: plain.isEmpty ? embedded : plain)
            if plain.isEmpty { embedded = [] }
        } else if names.isEmpty {
            inputs = ["x"]
            x = graph.addInput("x", type: .float, shape: [batch, .size(network.inputWidth)])
        } else {
            inputs = names
            x = graph.addConcatenation(ofColumns: names.map { graph.addInput($0, type: .float, shape: [batch, .size(1)]) })
        }
        switch normalizedWidth == 0 ? .none : normalization.mode {
        case .none: break
        case .scale: x = graph.addNormalization(x, offset: [0], scale: [1 / 255])
        case .standardize: x = graph.addNormalization(x, offset: normalized(normalization.offset), scale: normalized(normalization.scale))
        case .quantile: x = try addQuantiles(x, normalization, width: normalizedWidth, to: &graph, source: source)
        }
        if !embedded.isEmpty { x = graph.addConcatenation(ofColumns: [x] + embedded) }
        let parameters = network.parameters
        for layer in network.layers {
            let weight = Array(parameters[layer.weightOffset..<(layer.weightOffset + layer.outputWidth * layer.inputWidth)])
            let bias = Array(parameters[layer.biasOffset..<(layer.biasOffset + layer.outputWidth)])
            x = graph.addActivation(graph.addDenseLayer(x, weight: weight, bias: bias, inputWidth: layer.inputWidth), layer.activation)
        }
        let width = network.outputWidth
        var outputs = [probabilities]
        switch task {
        case .classification:
            graph.addOutput(graph.addSoftmax(x), named: probabilities, type: .float, shape: [batch, .size(width)])
            if let names = encoding?.classNames {
                graph.addOutput(graph.addClassName(x, names: names), named: predictedClass, type: .string, shape: [batch])
            } else {
                graph.addOutput(graph.addArgMax(x), named: predictedClass, type: .int64, shape: [batch])
            }
            outputs.append(predictedClass)
        case .binaryClassification:
            graph.addOutput(graph.addNode("Sigmoid", x), named: probabilities, type: .float, shape: [batch, .size(1)])
            let positive = graph.addNode("Greater", x, graph.addConstant(floats: [0], dims: []))
            let label = graph.addNode("Cast", positive, attributes: [("to", .int(Int(ONNXElementType.int64.rawValue)))])
            let index = graph.addNode("Squeeze", label, graph.addConstant(int64s: [1], dims: [1]))
            if let names = encoding?.classNames {
                let table = graph.addConstant(.strings(names, dims: [names.count]), named: "class_names")
                graph.addOutput(graph.addNode("Gather", table, index, attributes: [("axis", .int(0))]), named: predictedClass,
                                type: .string, shape: [batch])
            } else {
                graph.addOutput(index, named: predictedClass, type: .int64, shape: [batch])
            }
            outputs.append(predictedClass)
        case .multiLabel:
            graph.addOutput(graph.addNode("Sigmoid", x), named: probabilities, type: .float, shape: [batch, .size(width)])
        case .regression:
            if normalization.targetMode == .standardize {
                x = graph.addTargetRestoration(x, mean: normalization.targetMean, standardDeviation: normalization.targetStandardDeviation)
            }
            graph.addOutput(x, named: probabilities, type: .float, shape: [batch, .size(width)])
        }
        return (graph, inputs, outputs)
    }
}
