/// NeuralNet: dense layers, embedding tables, activations, losses, optimizers, schedules and dropout, each forward next
/// to its backward.

import Foundation
import Kernels

/// One dense layer's place in the flat buffers: y = x·Wᵀ + b, then the activation.
public struct DenseLayer: Equatable, Sendable {
    public let inputWidth: Int
    public let outputWidth: Int
    public let activation: Activation
    /// Offset of W[outputWidth×inputWidth] (PyTorch nn.Linear layout) in the flat buffers.
    public let weightOffset: Int
    /// Offset of b[outputWidth], right after W.
    public let biasOffset: Int
    /// Probability of zeroing each output in training (inverted dropout after the activation); 0 for none.
    public let dropout: Float

    /// Parameters in this layer (weights then biases).
    public var parameterCount: Int { outputWidth * inputWidth + outputWidth }
}

/// How weights are drawn at initialisation (fan-in/fan-out as PyTorch computes them for nn.Linear).
public enum WeightInitialization: String, CaseIterable, Sendable {
    case xavierUniform = "xavier_uniform"
    case xavierNormal = "xavier_normal"
    case heUniform = "he_uniform"
    case heNormal = "he_normal"
}

/// A stack of dense layers, optionally behind embedding tables, whose parameters and gradients each live in one flat
/// Float buffer, laid out as the tables, then layer by layer weight then bias — so one allreduce covers every
/// parameter and the bytes hash and save in the safetensors order.
public final class Network {
    /// Inputs per row: the plain inputs, then one code per embedding table.
    public let inputWidth: Int
    public let layers: [DenseLayer]
    /// The learned tables whose looked-up rows follow the plain inputs into the first layer (none for most networks).
    public let embeddings: [EmbeddingTable]
    /// Inputs per row that go to the first layer as they are (all of them without embeddings).
    public var plainInputWidth: Int { inputWidth - embeddings.count }
    public let parameterCount: Int
    /// Every weight and bias, layer by layer: the network's own buffer, or memory shared with other ranks.
    public private(set) var parameters: UnsafeMutableBufferPointer<Float>
    private let ownParameters: UnsafeMutableBufferPointer<Float>
    /// The gradient of the loss for every entry of `parameters`, same layout.
    public let gradients: UnsafeMutableBufferPointer<Float>
    /// Threads each kernel spreads over.
    public var threads: Int
    /// What the dense layers' matrix products read: fp32, or bf16 copies of weights and activations (fp32 sums).
    /// Parameters, gradients, biases and activations stay fp32 either way.
    public var precision: MatrixPrecision = .fp32

    // Per-layer activations for the current batch: preActivations[l] is z, outputs[l] is a = f(z) (shared if identity).
    private var batchCapacity = 0
    private(set) var preActivations: [UnsafeMutablePointer<Float>] = []
    private var outputs: [UnsafeMutablePointer<Float>] = []
    private var gradientScratch: [UnsafeMutablePointer<Float>] = []
    // For layers with dropout: the mask of the last training pass (0 or 1/(1−p)) and the output after it.
    private var dropoutMasks: [UnsafeMutablePointer<Float>?] = []
    private var droppedOutputs: [UnsafeMutablePointer<Float>?] = []
    // Whether the last forward pass applied dropout (a training pass), so backward goes through the masks.
    private var dropoutApplied = false
    // With embeddings: the first layer's input of the last forward pass [batch×layers[0].inputWidth].
    private var embeddedInput: UnsafeMutablePointer<Float>?

    /// A network for inputs of `inputWidth` features with layers of the given widths and activations and, per layer,
    /// an optional dropout rate in [0, 1) (`dropout` empty: none); parameters zeroed. With `embeddings`, the last
    /// `embeddings.count` of the `inputWidth` inputs are codes, each replaced by its table's row of `dimension` values.
    public init(inputWidth: Int, layers specs: [(units: Int, activation: Activation)], dropout: [Float] = [],
                embeddings tables: [(name: String, levels: Int, dimension: Int)] = [], threads: Int = 1) {
        precondition(inputWidth > 0 && !specs.isEmpty && specs.allSatisfy { $0.units > 0 })
        precondition(dropout.isEmpty || (dropout.count == specs.count && dropout.allSatisfy { $0 >= 0 && $0 < 1 }))
        precondition(tables.count <= inputWidth && tables.allSatisfy { $0.levels > 0 && $0.dimension > 0 })
        var embeddings: [EmbeddingTable] = []
        var offset = 0
        for table in tables {
            embeddings.append(EmbeddingTable(name: table.name, levels: table.levels, dimension: table.dimension, offset: offset))
            offset += table.levels * table.dimension
        }
        var layers: [DenseLayer] = []
        var width = inputWidth - tables.count + tables.reduce(0) { $0 + $1.dimension }
        for (index, spec) in specs.enumerated() {
            let layer = DenseLayer(inputWidth: width, outputWidth: spec.units, activation: spec.activation,
                                   weightOffset: offset, biasOffset: offset + spec.units * width,
                                   dropout: dropout.isEmpty ? 0 : dropout[index])
            layers.append(layer)
            offset += layer.parameterCount
            width = spec.units
        }
        self.inputWidth = inputWidth
        self.layers = layers
        self.embeddings = embeddings
        self.parameterCount = offset
        self.threads = max(1, threads)
        ownParameters = .allocate(capacity: offset)
        ownParameters.initialize(repeating: 0)
        parameters = ownParameters
        gradients = .allocate(capacity: offset)
        gradients.initialize(repeating: 0)
    }

    deinit {
        ownParameters.deallocate()
        gradients.deallocate()
        releaseWorkspace()
    }

    /// Keeps the parameters in `storage` from now on (`parameterCount` floats, e.g. memory a node's ranks share and
    /// update in slices), copying the current values there when `copying`; the caller keeps `storage` alive.
    public func useParameterStorage(_ storage: UnsafeMutablePointer<Float>, copying: Bool) {
        if copying { storage.update(from: parameters.baseAddress!, count: parameterCount) }
        parameters = UnsafeMutableBufferPointer(start: storage, count: parameterCount)
    }

    /// Width of the last layer.
    public var outputWidth: Int { layers.last!.outputWidth }

    /// Draws every weight from `weights`, sets every bias to `biasValue` and draws the embedding tables from N(0, 1),
    /// from `seed` (same on every rank).
    public func initialize(weights: WeightInitialization, biasValue: Float, seed: UInt64) {
        initializeEmbeddings(seed: seed)
        for (index, layer) in layers.enumerated() {
            var generator = SplitMix64(seed: seed, stream: UInt64(index + 1))
            let fanIn = Double(layer.inputWidth), fanOut = Double(layer.outputWidth)
            let weight = parameters.baseAddress! + layer.weightOffset
            let count = layer.outputWidth * layer.inputWidth
            switch weights {
            case .xavierUniform, .heUniform:
                let bound = weights == .xavierUniform ? (6 / (fanIn + fanOut)).squareRoot() : (6 / fanIn).squareRoot()
                for i in 0..<count { weight[i] = Float((2 * generator.nextUnitDouble() - 1) * bound) }
            case .xavierNormal, .heNormal:
                let deviation = weights == .xavierNormal ? (2 / (fanIn + fanOut)).squareRoot() : (2 / fanIn).squareRoot()
                for i in 0..<count { weight[i] = Float(generator.nextNormal() * deviation) }
            }
            (parameters.baseAddress! + layer.biasOffset).update(repeating: biasValue, count: layer.outputWidth)
        }
    }

    /// Makes room for batches of up to `capacity` rows (allocates only when it grows).
    public func reserve(batchCapacity capacity: Int) {
        guard capacity > batchCapacity else { return }
        releaseWorkspace()
        batchCapacity = capacity
        let widest = max(inputWidth, layers[0].inputWidth, layers.map(\.outputWidth).max()!)
        if !embeddings.isEmpty { embeddedInput = .allocate(capacity: capacity * layers[0].inputWidth) }
        for layer in layers {
            let z = UnsafeMutablePointer<Float>.allocate(capacity: capacity * layer.outputWidth)
            preActivations.append(z)
            outputs.append(layer.activation == .identity ? z : .allocate(capacity: capacity * layer.outputWidth))
            let dropping = layer.dropout > 0
            dropoutMasks.append(dropping ? .allocate(capacity: capacity * layer.outputWidth) : nil)
            droppedOutputs.append(dropping ? .allocate(capacity: capacity * layer.outputWidth) : nil)
        }
        gradientScratch = [.allocate(capacity: capacity * widest), .allocate(capacity: capacity * widest)]
    }

    private func releaseWorkspace() {
        for (z, a) in zip(preActivations, outputs) {
            if a != z { a.deallocate() }
            z.deallocate()
        }
        gradientScratch.forEach { $0.deallocate() }
        embeddedInput?.deallocate()
        embeddedInput = nil
        (dropoutMasks + droppedOutputs).forEach { $0?.deallocate() }
        preActivations = []
        outputs = []
        gradientScratch = []
        dropoutMasks = []
        droppedOutputs = []
        batchCapacity = 0
    }

    // input[batch×inputWidth] → outputs[batch×outputWidth]
    /// Runs the batch through every layer; returns the last layer's outputs (valid until the next call).
    ///
    /// A training `pass` applies each layer's dropout with masks drawn from it; without one (evaluation) dropout is
    /// the identity.
    @discardableResult
    public func forward(input: UnsafePointer<Float>, batch: Int, pass: TrainingPass? = nil) -> UnsafePointer<Float> {
        reserve(batchCapacity: batch)
        dropoutApplied = pass != nil
        var x = input
        if let embeddedInput {
            embeddingForward(input: input, plainWidth: plainInputWidth, tables: embeddings, parameters: parameters.baseAddress!,
                             output: embeddedInput, batch: batch)
            x = UnsafePointer(embeddedInput)
        }
        for (index, layer) in layers.enumerated() {
            let z = preActivations[index], a = outputs[index]
            denseForward(input: x, weight: parameters.baseAddress! + layer.weightOffset,
                         bias: parameters.baseAddress! + layer.biasOffset, output: z, batch: batch,
                         inputWidth: layer.inputWidth, outputWidth: layer.outputWidth, threads: threads,
                         precision: precision)
            layer.activation.forward(z, a, count: batch * layer.outputWidth, threads: threads)
            x = UnsafePointer(a)
            if let pass, let mask = dropoutMasks[index], let dropped = droppedOutputs[index] {
                dropoutForward(input: a, mask: mask, output: dropped, rows: batch, width: layer.outputWidth, rate: layer.dropout,
                               layer: index, pass: pass, threads: threads)
                x = UnsafePointer(dropped)
            }
        }
        return x
    }

    /// Layer `index`'s output as the last forward pass handed it on (after dropout in a training pass).
    private func passedOutput(_ index: Int) -> UnsafeMutablePointer<Float> {
        dropoutApplied ? droppedOutputs[index] ?? outputs[index] : outputs[index]
    }

    // outputGradient[batch×outputWidth] = ∂loss/∂(last outputs) → gradients (overwritten)
    /// Back-propagates from the gradient at the outputs of the last `forward`, overwriting `gradients`.
    ///
    /// `rowOffset` selects rows rowOffset..<rowOffset+batch of that forward pass (`input` and `outputGradient`
    /// point at those rows), so a batch can be back-propagated in fixed groups of samples.
    ///
    /// Each layer's parameter gradients go through `listener` when one is given (last layer first): it may compute
    /// them itself and learns when each layer is done, before the layer below is back-propagated. The embedding
    /// tables' gradients count as the first layer's: they are complete when it is.
    public func backward(input: UnsafePointer<Float>, outputGradient: UnsafePointer<Float>, batch: Int, rowOffset: Int = 0,
                         listener: BackwardListener? = nil) {
        var upstream = outputGradient // ∂loss/∂a for the current layer
        var scratchIndex = 0
        for index in layers.indices.reversed() {
            let layer = layers[index]
            let count = batch * layer.outputWidth
            // Through dropout first: da = d(dropped) ⊙ mask.
            if dropoutApplied, let mask = dropoutMasks[index] {
                let target = gradientScratch[scratchIndex]
                dropoutBackward(outputGradient: upstream, mask: mask + rowOffset * layer.outputWidth, inputGradient: target,
                                count: count, threads: threads)
                upstream = UnsafePointer(target)
                scratchIndex ^= 1
            }
            // dz = da ⊙ f'(z), written in place of z's scratch when the activation is not the identity.
            var dz = upstream
            if layer.activation != .identity {
                let target = gradientScratch[scratchIndex]
                layer.activation.backward(z: preActivations[index] + rowOffset * layer.outputWidth,
                                          a: outputs[index] + rowOffset * layer.outputWidth, outputGradient: upstream,
                                          inputGradient: target, count: count, threads: threads)
                dz = UnsafePointer(target)
                scratchIndex ^= 1
            }
            let layerInput = index > 0 ? UnsafePointer(passedOutput(index - 1) + rowOffset * layer.inputWidth)
                : embeddedInput.map { UnsafePointer($0 + rowOffset * layer.inputWidth) } ?? input
            if let listener {
                listener.parameterGradients(of: self, layer: index, outputGradient: dz, input: layerInput, batch: batch)
                // Ready before the input gradient's GEMM, so sending overlaps it; the tables come after layer 0's.
                if index > 0 || embeddings.isEmpty { listener.parameterGradientsReady(of: self, layer: index) }
            } else {
                writeParameterGradients(layer: index, outputGradient: dz, input: layerInput, batch: batch)
            }
            if index > 0 || !embeddings.isEmpty {
                let target = gradientScratch[scratchIndex]
                denseInputGradient(outputGradient: dz, weight: parameters.baseAddress! + layer.weightOffset,
                                   inputGradient: target, batch: batch, inputWidth: layer.inputWidth,
                                   outputWidth: layer.outputWidth, threads: threads, precision: precision)
                upstream = UnsafePointer(target)
                scratchIndex ^= 1
            }
            if index == 0 && !embeddings.isEmpty {
                if let listener {
                    listener.embeddingGradients(of: self, inputGradient: upstream, input: input, batch: batch)
                    listener.parameterGradientsReady(of: self, layer: 0)
                } else {
                    writeEmbeddingGradients(inputGradient: upstream, input: input, batch: batch)
                }
            }
        }
    }

    // dW[out×in] = dyᵀ·x, db[out] = Σ_rows dy
    /// Overwrites layer `index`'s weight and bias gradients with those of `batch` rows (dy and the layer's input x),
    /// in `destination` (a buffer laid out like `gradients`) when given, else in `gradients`; with `weightSum`, the
    /// weight gradient is added to that matrix [out×in] instead.
    public func writeParameterGradients(layer index: Int, outputGradient dy: UnsafePointer<Float>, input x: UnsafePointer<Float>,
                                        batch: Int, into destination: UnsafeMutablePointer<Float>? = nil,
                                        addingWeightGradientTo weightSum: UnsafeMutablePointer<Float>? = nil) {
        let layer = layers[index], target = destination ?? gradients.baseAddress!
        denseWeightGradient(outputGradient: dy, input: x, weightGradient: weightSum ?? target + layer.weightOffset,
                            biasGradient: target + layer.biasOffset, batch: batch,
                            inputWidth: layer.inputWidth, outputWidth: layer.outputWidth, threads: threads,
                            precision: precision, accumulatingWeights: weightSum != nil)
    }

    /// The square root of the sum of squares of every gradient (for clipping by global norm).
    public func gradientNorm() -> Double {
        sumOfSquares(gradients.baseAddress!, count: parameterCount).squareRoot()
    }
}

/// Hears back-propagation layer by layer, last layer first (a gradient reduction that sends each layer as soon as
/// it is ready, or one that sums parameter gradients in its own format).
public protocol BackwardListener: AnyObject {
    /// Produces layer `index`'s parameter gradients from dy [batch×out] and the layer's input x [batch×in];
    /// by default `network.writeParameterGradients`.
    func parameterGradients(of network: Network, layer index: Int, outputGradient dy: UnsafePointer<Float>,
                            input x: UnsafePointer<Float>, batch: Int)
    /// Produces the embedding tables' gradients from dx = ∂loss/∂(first layer's input) [batch×layers[0].inputWidth]
    /// and the network's input rows (their codes); by default `network.writeEmbeddingGradients`.
    func embeddingGradients(of network: Network, inputGradient dx: UnsafePointer<Float>, input: UnsafePointer<Float>,
                            batch: Int)
    /// Layer `index`'s parameter gradients (with layer 0, the embedding tables' too) are complete for this pass.
    func parameterGradientsReady(of network: Network, layer index: Int)
}

extension BackwardListener {
    public func parameterGradients(of network: Network, layer index: Int, outputGradient dy: UnsafePointer<Float>,
                                   input x: UnsafePointer<Float>, batch: Int) {
        network.writeParameterGradients(layer: index, outputGradient: dy, input: x, batch: batch)
    }

    public func embeddingGradients(of network: Network, inputGradient dx: UnsafePointer<Float>, input: UnsafePointer<Float>,
                                   batch: Int) {
        network.writeEmbeddingGradients(inputGradient: dx, input: input, batch: batch)
    }

    public func parameterGradientsReady(of network: Network, layer index: Int) {}
}
