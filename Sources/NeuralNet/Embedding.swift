import Kernels

/// One categorical column's learned table (PyTorch `nn.Embedding`): a row of `dimension` values per level.
public struct EmbeddingTable: Equatable, Sendable {
    /// The column the table belongs to (names the tensor in the model file).
    public let name: String
    public let levels: Int
    public let dimension: Int
    /// Offset of the table [levels×dimension], row-major (PyTorch's `weight`), in the flat buffers.
    public let offset: Int

    /// Parameters in the table.
    public var parameterCount: Int { levels * dimension }
}

// The embedding stage in front of the first dense layer. A network input row is
//   [plain inputs (plainWidth) | one code per table (the level index as a float)]
// and the row the first dense layer sees is
//   [plain inputs | table₀[code₀] (dimension₀) | table₁[code₁] | ...].

// input[batch×(plainWidth+tables)], parameters → output[batch×(plainWidth+Σ dimension)]
/// Copies each row's plain inputs and looks up each code's row in its table.
func embeddingForward(input: UnsafePointer<Float>, plainWidth: Int, tables: [EmbeddingTable], parameters: UnsafePointer<Float>,
                      output: UnsafeMutablePointer<Float>, batch: Int) {
    let inputWidth = plainWidth + tables.count
    let outputWidth = plainWidth + tables.reduce(0) { $0 + $1.dimension }
    for row in 0..<batch {
        let x = input + row * inputWidth
        var y = output + row * outputWidth
        y.update(from: x, count: plainWidth)
        y += plainWidth
        for (index, table) in tables.enumerated() {
            let code = embeddingCode(x[plainWidth + index], levels: table.levels)
            y.update(from: parameters + table.offset + code * table.dimension, count: table.dimension)
            y += table.dimension
        }
    }
}

// outputGradient[batch×(plainWidth+Σ dimension)], input codes → tableGradients at each table's offset (overwritten)
/// Overwrites every table's gradient with the sum of the output gradient rows of the rows whose code picks each level
/// (no gradient flows to the codes).
func embeddingBackward(outputGradient: UnsafePointer<Float>, input: UnsafePointer<Float>, plainWidth: Int,
                       tables: [EmbeddingTable], gradients: UnsafeMutablePointer<Float>, batch: Int) {
    for table in tables { (gradients + table.offset).update(repeating: 0, count: table.parameterCount) }
    forEachEmbeddingRow(outputGradient: outputGradient, input: input, plainWidth: plainWidth, tables: tables, batch: batch) {
        table, code, values in
        let target = gradients + table.offset + code * table.dimension
        for i in 0..<table.dimension { target[i] += values[i] }
    }
}

/// Calls `body` with every (table, level, output gradient of the looked-up vector) of `batch` rows, row by row.
func forEachEmbeddingRow(outputGradient: UnsafePointer<Float>, input: UnsafePointer<Float>, plainWidth: Int,
                         tables: [EmbeddingTable], batch: Int,
                         _ body: (_ table: EmbeddingTable, _ code: Int, _ values: UnsafePointer<Float>) -> Void) {
    let inputWidth = plainWidth + tables.count
    let outputWidth = plainWidth + tables.reduce(0) { $0 + $1.dimension }
    for row in 0..<batch {
        var dy = outputGradient + row * outputWidth + plainWidth
        for (index, table) in tables.enumerated() {
            body(table, embeddingCode(input[row * inputWidth + plainWidth + index], levels: table.levels), dy)
            dy += table.dimension
        }
    }
}

/// The level a code input names; the encoder writes only whole numbers below `levels`.
@inline(__always)
private func embeddingCode(_ value: Float, levels: Int) -> Int {
    let code = Int(value)
    precondition(code >= 0 && code < levels && Float(code) == value, "embedding code \(value) outside 0..<\(levels)")
    return code
}

extension Network {
    /// The embedding tables' parameters: the start of the flat buffers, before the first layer's weight.
    public var embeddingParameters: Range<Int> { 0..<(layers[0].weightOffset) }

    // rows of `input` (batch×inputWidth) and dx = ∂loss/∂(first layer's input) (batch×layers[0].inputWidth)
    /// Overwrites the tables' gradients with those of `batch` rows, in `destination` (laid out like `gradients`) when
    /// given, else in `gradients`.
    public func writeEmbeddingGradients(inputGradient dx: UnsafePointer<Float>, input: UnsafePointer<Float>, batch: Int,
                                        into destination: UnsafeMutablePointer<Float>? = nil) {
        embeddingBackward(outputGradient: dx, input: input, plainWidth: plainInputWidth, tables: embeddings,
                          gradients: destination ?? gradients.baseAddress!, batch: batch)
    }

    /// Calls `body` with each of `batch` rows' (table, level, gradient of the looked-up vector), row by row: for a
    /// reduction that sums the tables' gradients in its own format.
    public func forEachEmbeddingGradient(inputGradient dx: UnsafePointer<Float>, input: UnsafePointer<Float>, batch: Int,
                                         _ body: (_ table: EmbeddingTable, _ code: Int, _ values: UnsafePointer<Float>) -> Void) {
        forEachEmbeddingRow(outputGradient: dx, input: input, plainWidth: plainInputWidth, tables: embeddings, batch: batch, body)
    }

    /// Draws every table entry from N(0, 1), as PyTorch's `nn.Embedding` does, from `seed` (same on every rank).
    func initializeEmbeddings(seed: UInt64) {
        for (index, table) in embeddings.enumerated() {
            // Streams above the layers' (1...layers.count), so the layers draw what they drew without tables.
            var generator = SplitMix64(seed: seed, stream: (1 << 32) + UInt64(index))
            let values = parameters.baseAddress! + table.offset
            for i in 0..<table.parameterCount { values[i] = Float(generator.nextNormal()) }
        }
    }
}
