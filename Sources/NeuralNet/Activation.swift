import Kernels

/// Elementwise nonlinearity applied after a dense layer; the same definitions as PyTorch's.
public enum Activation: String, CaseIterable, Sendable {
    case identity
    case relu
    case leakyRelu = "leaky_relu"
    case sigmoid
    case tanh
    case gelu

    /// Negative-side slope of `leaky_relu` (PyTorch's default).
    public static let leakySlope: Float = 0.01

    // a[count] = f(z[count])
    /// Writes a = f(z) for `count` values, spread over `threads`.
    public func forward(_ z: UnsafePointer<Float>, _ a: UnsafeMutablePointer<Float>, count: Int, threads: Int) {
        if self == .identity {
            if UnsafePointer(a) != z { a.update(from: z, count: count) }
            return
        }
        forEachChunk(count: count, threads: threads, ActivationForwardChunk(activation: self, z: z, a: a))
    }

    // dz[count] = da[count] ⊙ f'(z)   (a = f(z) is passed so sigmoid/tanh reuse it)
    /// Writes dz = da · f'(z), the gradient through the activation.
    public func backward(z: UnsafePointer<Float>, a: UnsafePointer<Float>, outputGradient da: UnsafePointer<Float>,
                         inputGradient dz: UnsafeMutablePointer<Float>, count: Int, threads: Int) {
        if self == .identity {
            if UnsafePointer(dz) != da { dz.update(from: da, count: count) }
            return
        }
        forEachChunk(count: count, threads: threads, ActivationBackwardChunk(activation: self, z: z, a: a, da: da, dz: dz))
    }

    // Comparisons go through FloatVector's lanesLess (one instruction) rather than the generic SIMD operators.
    @inline(__always)
    func apply<V: FloatVector>(_ x: V) -> V {
        switch self {
        case .identity: return x
        case .relu: return x.replacing(with: 0, where: .!V().lanesLess(than: x))
        case .leakyRelu: return x.replacing(with: x * Activation.leakySlope, where: .!V().lanesLess(than: x))
        case .sigmoid: return vectorSigmoid(x)
        case .tanh: return vectorTanh(x)
        case .gelu: return 0.5 * x * (1 + vectorErf(x * Float(0.5).squareRoot()))
        }
    }

    @inline(__always)
    func derivative<V: FloatVector>(_ z: V, _ a: V) -> V {
        let one = V(repeating: 1)
        switch self {
        case .identity: return one
        case .relu: return V(repeating: 0).replacing(with: 1, where: V().lanesLess(than: z))
        case .leakyRelu: return V(repeating: Activation.leakySlope).replacing(with: 1, where: V().lanesLess(than: z))
        case .sigmoid: return a * (one - a)
        case .tanh: return one - a * a
        case .gelu:
            // d/dz [z·Φ(z)] = Φ(z) + z·φ(z)
            let cdf = 0.5 * (one + vectorErf(z * Float(0.5).squareRoot()))
            let density = vectorExp(-0.5 * z * z) * Float(0.3989422804014327)
            return cdf + z * density
        }
    }
}

/// a = f(z) over one chunk.
private struct ActivationForwardChunk: ChunkJob {
    let activation: Activation
    let z: UnsafePointer<Float>
    let a: UnsafeMutablePointer<Float>

    func perform<V: FloatVector>(_ range: Range<Int>, as _: V.Type) {
        forEachVector(in: range, as: V.self) { i, lanes in
            lanes.store(activation.apply(lanes.load(z + i) as V), a + i)
        }
    }
}

/// dz = da · f'(z) over one chunk.
private struct ActivationBackwardChunk: ChunkJob {
    let activation: Activation
    let z: UnsafePointer<Float>
    let a: UnsafePointer<Float>
    let da: UnsafePointer<Float>
    let dz: UnsafeMutablePointer<Float>

    func perform<V: FloatVector>(_ range: Range<Int>, as _: V.Type) {
        forEachVector(in: range, as: V.self) { i, lanes in
            let zv: V = lanes.load(z + i), av: V = lanes.load(a + i), gv: V = lanes.load(da + i)
            lanes.store(gv * activation.derivative(zv, av), dz + i)
        }
    }
}
