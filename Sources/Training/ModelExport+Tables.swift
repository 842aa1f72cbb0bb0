import Datasets
import ONNX
import Support
import Tables

// A table model's raw columns as the network's inputs, in TableEncoding's order: per feature column in file order a
// numeric value (gaps filled) or a one-hot block, then the gap indicators (the inputs normalization sees), then each
// embedding column's looked-up row (what the network's embedding stage puts in place of its code).
extension ModelExport {
    /// One input per feature column of `encoding` (float32 [N, 1] for numbers, NaN a gap; string [N, 1] for
    /// categories, the empty string or a `data.missing_values` text a gap); from them the inputs before the embedding
    /// codes as `TableEncoding.encode` builds them (their columns, to be concatenated and normalized) and each
    /// embedding column's rows of its table in `tables` [N, dimension].
    static func addTableInputs(_ encoding: TableEncoding, tables: [(column: String, levels: Int, dimension: Int, values: [Float])],
                               to graph: inout ONNXGraph, batch: ONNXDimension) -> (plain: [String], embedded: [String], inputs: [String]) {
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
                case let .embedding(dimension):
                    let table = tables.first { $0.column == column.name }!
                    embeddings.append(graph.addEmbedding(codes, table: table.values, width: dimension))
                }
            }
        }
        return (blocks + indicators, embeddings, inputs)
    }

    /// x [N, F] through the quantile transform of `normalization` (features without quantiles pass unchanged). A
    /// normalizable feature with a single quantile (a single training row) is a `UserError` naming `source`.
    static func addQuantiles(_ x: String, _ normalization: NormalizationRecord, width: Int, to graph: inout ONNXGraph,
                             source: String) throws -> String {
        let normalizable = normalization.encoding?.normalizable
        var quantiles: [[Double]] = [], levels: [[Double]] = []
        for (feature, fitted) in normalization.quantiles.prefix(width).enumerated() {
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
