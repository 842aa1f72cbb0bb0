import NeuralNet

// The pieces of a dense network's inference path. Each takes the name of a float32 [N, width] value and returns the
// name of its result; the arithmetic is in the order Plexus computes it, so the results agree to rounding.
extension ONNXGraph {
    /// The float32 [N, 1] columns side by side as one [N, columns] value.
    public mutating func addConcatenation(ofColumns columns: [String]) -> String {
        guard columns.count > 1 else { return columns[0] }
        return addNode("Concat", columns, attributes: [("axis", .int(1))], outputCount: 1)[0]
    }

    /// (x − offset) · scale per feature: the `standardize` and `scale` normalizations.
    public mutating func addNormalization(_ x: String, offset: [Float], scale: [Float]) -> String {
        let shifted = addNode("Sub", x, addConstant(floats: offset, dims: [offset.count], named: "feature_offset"))
        return addNode("Mul", shifted, addConstant(floats: scale, dims: [scale.count], named: "feature_scale"))
    }

    /// x·Wᵀ + b for a weight [outputs, inputs] in PyTorch's nn.Linear layout (row-major) and a bias [outputs].
    public mutating func addDenseLayer(_ x: String, weight: [Float], bias: [Float], inputWidth: Int) -> String {
        let weightName = addConstant(floats: weight, dims: [bias.count, inputWidth], named: "weight")
        let biasName = addConstant(floats: bias, dims: [bias.count], named: "bias")
        return addNode("Gemm", x, weightName, biasName, attributes: [("transB", .int(1))])
    }

    /// `activation` applied elementwise, as Plexus defines it (GELU exact, through Erf; opset 17 has no Gelu).
    public mutating func addActivation(_ x: String, _ activation: Activation) -> String {
        switch activation {
        case .identity: return x
        case .relu: return addNode("Relu", x)
        case .leakyRelu: return addNode("LeakyRelu", x, attributes: [("alpha", .float(Activation.leakySlope))])
        case .sigmoid: return addNode("Sigmoid", x)
        case .tanh: return addNode("Tanh", x)
        case .gelu:
            // 0.5 · x · (1 + erf(x · √½))
            let erf = addNode("Erf", addNode("Mul", x, addConstant(floats: [Float(0.5).squareRoot()], dims: [])))
            let onePlus = addNode("Add", erf, addConstant(floats: [1], dims: []))
            return addNode("Mul", addNode("Mul", addConstant(floats: [0.5], dims: []), x), onePlus)
        }
    }

    /// Softmax over each row's logits: class probabilities.
    public mutating func addSoftmax(_ logits: String) -> String {
        addNode("Softmax", logits, attributes: [("axis", .int(1))])
    }

    /// The index of each row's largest value, int64 [N] (the first of equal ones).
    public mutating func addArgMax(_ x: String) -> String {
        addNode("ArgMax", x, attributes: [("axis", .int(1)), ("keepdims", .int(0))])
    }

    /// x · deviation + mean per column: targets back in their own units after `normalize_targets: standardize`.
    public mutating func addTargetRestoration(_ x: String, mean: [Float], standardDeviation: [Float]) -> String {
        let scaled = addNode("Mul", x, addConstant(floats: standardDeviation, dims: [standardDeviation.count], named: "target_std"))
        return addNode("Add", scaled, addConstant(floats: mean, dims: [mean.count], named: "target_mean"))
    }
}
