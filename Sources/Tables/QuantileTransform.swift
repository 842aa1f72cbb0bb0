import Foundation

// scikit-learn's QuantileTransformer(n_quantiles=Q, output_distribution="normal", subsample=None): per feature, the
// training values' quantiles at Q evenly spaced levels (NumPy's linear percentiles, made non-decreasing); a value
// maps to its level by interpolating among them (the mean of the interpolations from below and from above, so tied
// quantiles map to the middle of their levels), and the level to the standard normal's quantile, clipped at
// ±5.1993 (the levels 1e-7 and 1 − 1e-7).

/// The quantiles of one feature, fitted on the training rows.
public struct FeatureQuantiles: Equatable, Sendable {
    /// The values at the levels 0, 1/(Q−1), ..., 1, non-decreasing.
    public private(set) var values: [Double]
    /// The levels of `values`: 0, 1/(Q−1), ..., 1 as numpy.linspace computes them.
    public private(set) var levels: [Double] = []
    /// Values and levels negated in reverse order (the interpolation from above).
    private var reversedValues: [Double] = [], reversedLevels: [Double] = []

    /// Quantiles as saved (a model file).
    public init(values: [Double]) {
        self.values = values.isEmpty ? [0] : values
        prepare()
    }

    private mutating func prepare() {
        let count = values.count
        // numpy.linspace(0, 1, Q)
        levels = (0..<count).map { count == 1 ? 0 : $0 == count - 1 ? 1 : Double($0) * (1 / Double(count - 1)) }
        reversedValues = values.reversed().map { -$0 }
        reversedLevels = levels.reversed().map { -$0 }
    }

    /// Fits `min(levels, values.count)` quantiles of `values` (which it sorts); no values give the single quantile 0.
    public init(fitting values: inout [Double], levels: Int) {
        values.sort()
        guard !values.isEmpty else {
            self.values = [0]
            prepare()
            return
        }
        let count = min(levels, values.count)
        var quantiles = (0..<count).map { index -> Double in
            let level = count == 1 ? 0 : Double(index) / Double(count - 1)
            return linearPercentile(values, level)
        }
        for index in quantiles.indices.dropFirst() where quantiles[index] < quantiles[index - 1] {
            quantiles[index] = quantiles[index - 1]
        }
        self.values = quantiles
        prepare()
    }

    /// `value` mapped through the quantiles to the standard normal distribution.
    public func transform(_ value: Double) -> Double {
        let level: Double
        if value == values[0] {
            level = 0
        } else if value == values.last! {
            level = 1
        } else {
            level = 0.5 * (interpolate(value, values, levels) - interpolate(-value, reversedValues, reversedLevels))
        }
        return min(max(inverseNormal(level), clipMinimum), clipMaximum)
    }
}

/// norm.ppf(1e-7 − ε) and norm.ppf(1 − (1e-7 − ε)): where scikit-learn clips the normal output.
private let clipMinimum = inverseNormal(1e-7 - Double.ulpOfOne), clipMaximum = inverseNormal(1 - (1e-7 - Double.ulpOfOne))

/// NumPy's percentile of sorted `values` at `level` in [0, 1] with linear interpolation (its `_lerp`).
func linearPercentile(_ values: [Double], _ level: Double) -> Double {
    let position = level * Double(values.count - 1)
    let below = min(Int(position.rounded(.down)), values.count - 1), above = min(below + 1, values.count - 1)
    let fraction = position - Double(below)
    let low = values[below], high = values[above], difference = high - low
    return fraction >= 0.5 ? high - difference * (1 - fraction) : low + difference * fraction
}

/// `numpy.interp(x, xs, ys)` for non-decreasing `xs`: linear between the last xs[j] ≤ x and xs[j+1], clamped at the ends.
func interpolate(_ x: Double, _ xs: [Double], _ ys: [Double]) -> Double {
    guard let last = xs.last, x <= last else { return ys.last! }
    guard x >= xs[0] else { return ys[0] }
    var low = 0, high = xs.count  // the largest j with xs[j] <= x
    while high - low > 1 {
        let middle = (low + high) / 2
        if xs[middle] <= x { low = middle } else { high = middle }
    }
    let j = low
    if j == xs.count - 1 || xs[j] == x { return ys[j] }
    let slope = (ys[j + 1] - ys[j]) / (xs[j + 1] - xs[j])
    return slope * (x - xs[j]) + ys[j]
}

/// The standard normal distribution's quantile function (Acklam's approximation refined by one Halley step:
/// relative error below 1e-15); −∞ at 0 and +∞ at 1.
public func inverseNormal(_ p: Double) -> Double {
    if p <= 0 { return -.infinity }
    if p >= 1 { return .infinity }
    let a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02,
             -3.066479806614716e+01, 2.506628277459239e+00]
    let b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01,
             -1.328068155288572e+01]
    let c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00,
             4.374664141464968e+00, 2.938163982698783e+00]
    let d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00]
    let low = 0.02425
    var x: Double
    if p < low || p > 1 - low {
        let q = (-2 * log(p < low ? p : 1 - p)).squareRoot()
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        if p > 1 - low { x = -x }
    } else {
        let q = p - 0.5, r = q * q
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
            / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
    }
    // One Halley step on Φ(x) − p, with Φ(x) = erfc(−x/√2)/2.
    let error = 0.5 * erfc(-x / 2.0.squareRoot()) - p
    let u = error * (2 * Double.pi).squareRoot() * exp(x * x / 2)
    return x - u / (1 + x * u / 2)
}
