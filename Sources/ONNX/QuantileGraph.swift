// scikit-learn's QuantileTransformer(output_distribution="normal") as a graph, in float64 as scikit-learn computes it:
// per feature, a value's level is the mean of numpy.interp over the quantiles from below and from above (so tied
// quantiles map to the middle of their levels); values within 1e-7 of the first or last quantile, or beyond, get
// level 0 or 1; the level, clipped to [1e-7 − ε, 1 − (1e-7 − ε)], goes through the standard normal's quantile
// function (Acklam's rational approximation, relative error below 1.2e-9). NaN stays NaN.
extension ONNXGraph {
    /// x [N, F] float32 through per-feature quantiles (`quantiles[f]`, non-decreasing) at `levels[f]` (as many
    /// values from 0 to 1: scikit-learn's references_), as float32 [N, F]; a feature with no quantiles (and no
    /// levels) passes unchanged. Unless every feature has the same levels, the features go a column at a time.
    public mutating func addQuantileNormalization(_ x: String, quantiles: [[Double]], levels: [[Double]]) -> String {
        precondition(quantiles.count == levels.count
                     && zip(quantiles, levels).allSatisfy { $0.count == $1.count && ($0.isEmpty || $0.count >= 2) },
                     "no quantiles, or at least two with one level each, for every feature")
        let value = addNode("Cast", x, attributes: [("to", .int(Int(ONNXElementType.double.rawValue)))])
        let normal: String
        if !levels[0].isEmpty && levels.allSatisfy({ $0 == levels[0] }) {
            normal = addNormalQuantiles(value, quantiles: quantiles, levels: levels[0])
        } else {
            normal = addNode("Concat", quantiles.indices.map { feature in
                let column = addNode("Gather", value, addConstant(int64s: [feature], dims: [1]), attributes: [("axis", .int(1))])
                guard !quantiles[feature].isEmpty else { return column }
                return addNormalQuantiles(column, quantiles: [quantiles[feature]], levels: levels[feature])
            }, attributes: [("axis", .int(1))], outputCount: 1)[0]
        }
        return addNode("Cast", normal, attributes: [("to", .int(Int(ONNXElementType.float.rawValue)))])
    }

    /// float64 value [N, F] through quantiles with the same `levels` for every feature, as float64 [N, F].
    private mutating func addNormalQuantiles(_ value: String, quantiles: [[Double]], levels: [Double]) -> String {
        let features = quantiles.count, count = levels.count
        // [Q, F]: quantile q of feature f at q·F + f.
        let table = (0..<count).flatMap { level in (0..<features).map { quantiles[$0][level] } }
        let quantileTable = addConstant(.doubles(table, dims: [count, features]), named: "quantiles")
        let levelTable = addConstant(.doubles((0..<count).flatMap { level in [Double](repeating: levels[level], count: features) },
                                              dims: [count, features]), named: "levels")
        let column = addNode("Unsqueeze", value, addConstant(int64s: [1], dims: [1]))  // [N, 1, F]
        func interpolation(_ comparison: String) -> String {
            // The number of quantiles below (or at) each value picks the segment [index − 1, index].
            let below = addNode("Cast", addNode(comparison, quantileTable, column), attributes: [("to", .int(Int(ONNXElementType.int64.rawValue)))])
            let counted = addNode("ReduceSum", below, addConstant(int64s: [1], dims: [1]), attributes: [("keepdims", .int(0))])
            let high = addNode("Min", addNode("Max", counted, addConstant(int64s: [1], dims: [])), addConstant(int64s: [count - 1], dims: []))
            let low = addNode("Sub", high, addConstant(int64s: [1], dims: []))
            func pick(_ source: String, _ index: String) -> String {
                addNode("GatherElements", source, index, attributes: [("axis", .int(0))])
            }
            let lowValue = pick(quantileTable, low), span = addNode("Sub", pick(quantileTable, high), lowValue)
            let safeSpan = addNode("Where", addNode("Greater", span, double(0)), span, double(1))
            let fraction = addNode("Min", addNode("Max", addNode("Div", addNode("Sub", value, lowValue), safeSpan), double(0)), double(1))
            let lowLevel = pick(levelTable, low)
            return addNode("Add", lowLevel, addNode("Mul", fraction, addNode("Sub", pick(levelTable, high), lowLevel)))
        }
        var level = addNode("Mul", double(0.5), addNode("Add", interpolation("LessOrEqual"), interpolation("Less")))
        let threshold = 1e-7
        let first = addConstant(.doubles(quantiles.map { $0[0] }, dims: [features]), named: "first_quantile")
        let last = addConstant(.doubles(quantiles.map { $0[count - 1] }, dims: [features]), named: "last_quantile")
        level = addNode("Where", addNode("Greater", addNode("Add", value, double(threshold)), last), double(1), level)
        level = addNode("Where", addNode("Less", addNode("Sub", value, double(threshold)), first), double(0), level)
        let edge = threshold - Double.ulpOfOne
        level = addNode("Min", addNode("Max", level, double(edge)), double(1 - edge))
        return addNode("Where", addNode("IsNaN", value), value, addInverseNormal(level))
    }

    /// A float64 scalar constant.
    private mutating func double(_ number: Double) -> String { addConstant(.doubles([number], dims: []), named: "scalar") }

    /// c₀·vⁿ + c₁·vⁿ⁻¹ + … + cₙ by Horner's rule (float64).
    private mutating func addPolynomial(_ v: String, _ coefficients: [Double]) -> String {
        var sum = double(coefficients[0])
        for coefficient in coefficients.dropFirst() { sum = addNode("Add", addNode("Mul", sum, v), double(coefficient)) }
        return sum
    }

    /// The standard normal's quantile function of p in (0, 1), float64 (Acklam's approximation).
    private mutating func addInverseNormal(_ p: String) -> String {
        let a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02,
                 -3.066479806614716e+01, 2.506628277459239e+00]
        let b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01,
                 -1.328068155288572e+01, 1]
        let c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00,
                 4.374664141464968e+00, 2.938163982698783e+00]
        let d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00, 1]
        let tailStart = 0.02425
        // Central region: q = p − ½, r = q², x = q·A(r)/B(r).
        let centered = addNode("Sub", p, double(0.5)), squared = addNode("Mul", centered, centered)
        let central = addNode("Div", addNode("Mul", addPolynomial(squared, a), centered), addPolynomial(squared, b))
        // Tails: q = √(−2 ln min(p, 1 − p)), x = ±C(q)/D(q), negative below ½.
        let tailProbability = addNode("Min", p, addNode("Sub", double(1), p))
        let root = addNode("Sqrt", addNode("Mul", double(-2), addNode("Log", tailProbability)))
        let lowerTail = addNode("Div", addPolynomial(root, c), addPolynomial(root, d))
        let tail = addNode("Where", addNode("Greater", p, double(0.5)), addNode("Neg", lowerTail), lowerTail)
        return addNode("Where", addNode("Less", tailProbability, double(tailStart)), tail, central)
    }
}
