// The pieces of a table's column rules: gaps filled or flagged, text categories as indices, one-hot columns or
// embedding rows, and class names. Numeric values are float32 [N, width], a text column is string [N, 1].
extension ONNXGraph {
    /// x with each NaN replaced by its column's `fills` value.
    public mutating func addMissingFill(_ x: String, fills: [Float]) -> String {
        addNode("Where", addNode("IsNaN", x), addConstant(floats: fills, dims: [fills.count], named: "fill"), x)
    }

    /// 1 where x is NaN, else 0 (float32, x's shape).
    public mutating func addMissingIndicator(_ x: String) -> String {
        addNode("Cast", addNode("IsNaN", x), attributes: [("to", .int(Int(ONNXElementType.float.rawValue)))])
    }

    /// Each text value's index among `levels` (int64, the column's shape); a value in `missingValues` gets
    /// `missingIndex` (when there is one: a gap as a level of its own), any other value `otherIndex`.
    public mutating func addCategoryIndex(_ column: String, levels: [String], otherIndex: Int, missingValues: [String] = [],
                                          missingIndex: Int? = nil) -> String {
        let gaps = missingIndex == nil ? [] : missingValues.filter { !levels.contains($0) }
        return addNode("LabelEncoder", column, attributes: [
            ("keys_strings", .strings(levels + gaps)),
            ("values_int64s", .ints(Array(levels.indices) + gaps.map { _ in missingIndex! })),
            ("default_int64", .int(otherIndex)),
        ], domain: Self.machineLearningDomain)
    }

    /// int64 indices [N, 1] as one-hot float32 rows [N, width] (an index outside 0..<width gives a row of zeros).
    public mutating func addOneHot(_ indices: String, width: Int) -> String {
        let positions = addConstant(int64s: Array(0..<width), dims: [width], named: "positions")
        return addNode("Cast", addNode("Equal", indices, positions), attributes: [("to", .int(Int(ONNXElementType.float.rawValue)))])
    }

    /// The rows of `table` [levels, width] (row-major) that int64 indices [N, 1] pick, as float32 [N, width]
    /// (PyTorch nn.Embedding's lookup).
    public mutating func addEmbedding(_ indices: String, table: [Float], width: Int) -> String {
        let tableName = addConstant(floats: table, dims: [table.count / width, width], named: "embedding")
        let rows = addNode("Gather", tableName, indices, attributes: [("axis", .int(0))])
        return addNode("Flatten", rows, attributes: [("axis", .int(1))])
    }

    /// The name of each row's most probable class (string [N]) from probabilities or logits [N, names.count].
    public mutating func addClassName(_ scores: String, names: [String]) -> String {
        let table = addConstant(.strings(names, dims: [names.count]), named: "class_names")
        return addNode("Gather", table, addArgMax(scores), attributes: [("axis", .int(0))])
    }
}
