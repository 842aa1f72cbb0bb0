import Datasets
import ONNX
import Support
import Tables

// A table model's raw columns as the network's inputs, in TableEncoding's order: per feature column in file order a
// numeric value (gaps filled) or a one-hot block, then the gap indicators, then the embedding columns' blocks.
extension ModelExport {
    /// One input per feature column of `encoding` (float32 [N, 1] for numbers, NaN a gap; string [N, 1] for
    /// categories, the empty string or a `data.missing_values` text a gap) and the network's input [N, features]
    /// built from them as `TableEncoding.encode` builds it. An embedding column is a `UserError` naming `source`.
    static func addTableInputs(_ encoding: TableEncoding, to graph: inout ONNXGraph, batch: ONNXDimension,
                               source: String) throws -> (x: String, inputs: [String]) {
        // Every input first, so no name the graph makes up for a node can take a column's name.
        let inputs = encoding.columns.map { column -> String in
            if case .categorical = column.kind { return graph.addInput(column.name, type: .string, shape: [batch, .size(1)]) }
            return graph.addInput(column.name, type: .float, shape: [batch, .size(1)])
        }
        // A cell with no text (a Parquet null) is a gap too; in ONNX it is the empty string.
        let gaps = encoding.missingValues + (encoding.missingValues.contains("") ? [] : [""])
        var blocks: [String] = [], indicators: [String] = [], embeddings: [String] = []
        for (column, input) in zip(encoding.columns, inputs) {
            switch column.kind {
            case let .numeric(fill, indicator):
                blocks.append(fill.map { graph.addMissingFill(input, fills: [$0]) } ?? input)
                if indicator { indicators.append(graph.addMissingIndicator(input)) }
            case let .categorical(levels):
                let codes = graph.addCategoryIndex(input, levels: levels.levels, otherIndex: levels.otherCode, missingValues: gaps,
                                                   missingIndex: levels.missingLevel ? levels.missingCode : nil)
                switch levels.encoding {
                case .oneHot: blocks.append(graph.addOneHot(codes, width: levels.codeCount))
                case .embedding: embeddings.append(try embeddingBlock(codes, column: column.name, levels: levels, source: source))
                }
            }
        }
        return (graph.addConcatenation(ofColumns: blocks + indicators + embeddings), inputs)
    }

    /// The network's inputs for an embedding column from its codes (int64 [N, 1]): refused (a `UserError` naming
    /// `source`) until the model file records the learned tables; then it is `graph.addEmbedding(codes, table: TABLE,
    /// width: dimension)` with the column's table [levels.codeCount, dimension].
    private static func embeddingBlock(_ codes: String, column: String, levels: CategoricalLevels, source: String) throws -> String {
        throw UserError("\(source): the column \(quotedForMessage(column)) is a learned embedding, which the ONNX export "
            + "does not write yet; encode it one_hot to export the model")
    }

    /// x [N, F] through the quantile transform of `normalization` (features without quantiles pass unchanged). A
    /// normalizable feature with a single quantile (a single training row) is a `UserError` naming `source`.
    static func addQuantiles(_ x: String, _ normalization: NormalizationRecord, to graph: inout ONNXGraph,
                             source: String) throws -> String {
        let normalizable = normalization.encoding?.normalizable
        var quantiles: [[Double]] = [], levels: [[Double]] = []
        for (feature, fitted) in normalization.quantiles.enumerated() {
            guard normalizable?[feature] ?? true else { (quantiles, levels) = (quantiles + [[]], levels + [[]]); continue }
            guard fitted.values.count >= 2 else {
                throw UserError("\(source): input \(feature + 1) has a single quantile (one training row); the ONNX export "
                    + "needs at least two")
            }
            quantiles.append(fitted.values)
            levels.append(fitted.levels)
        }
        return graph.addQuantileNormalization(x, quantiles: quantiles, levels: levels)
    }
}
