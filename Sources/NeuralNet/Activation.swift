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
        forEachChunk(count: count, threads: threads, minimumChunk: elementwiseMinimumChunk,
                     ActivationForwardChunk(activation: self, z: z, a: a))
    }

    // dz[count] = da[count] ⊙ f'(z)   (a = f(z) is passed so sigmoid/tanh reuse it)
    /// Writes dz = da · f'(z), the gradient through the activation.
    public func backward(z: UnsafePointer<Float>, a: UnsafePointer<Float>, outputGradient da: UnsafePointer<Float>,
                         inputGradient dz: UnsafeMutablePointer<Float>, count: Int, threads: Int) {
        if self == .identity {
            if UnsafePointer(dz) != da { dz.update(from: da, count: count) }
            return
        }
        forEachChunk(count: count, threads: threads, minimumChunk: elementwiseMinimumChunk,
                     ActivationBackwardChunk(activation: self, z: z, a: a, da: da, dz: dz))
    }

    @inline(__always)
    func apply(_ x: SIMD8<Float>) -> SIMD8<Float> {
        switch self {
        case .identity: return x
        case .relu: return x.replacing(with: 0, where: .!(x .> 0))
        case .leakyRelu: return x.replacing(with: x * Activation.leakySlope, where: .!(x .> 0))
        case .sigmoid: return vectorSigmoid(x)
        case .tanh: return vectorTanh(x)
        case .gelu: return 0.5 * x * (1 + vectorErf(x * Float(0.5).squareRoot()))
        }
    }

    @inline(__always)
    func derivative(_ z: SIMD8<Float>, _ a: SIMD8<Float>) -> SIMD8<Float> {
        let one = SIMD8<Float>(repeating: 1)
        switch self {
        case .identity: return one
        case .relu: return SIMD8(repeating: 0).replacing(with: 1, where: z .> 0)
        case .leakyRelu: return SIMD8(repeating: Activation.leakySlope).replacing(with: 1, where: z .> 0)
        case .sigmoid: return a * (one - a)
        case .tanh: return one - a * a
        case .gelu:
            // d/dz [z·Φ(z)] = Φ(z) + z·φ(z)
            let cdf = 0.5 * (one + vectorErf(z * Float(0.5).squareRoot()))
            let density = vectorExp(-0.5 * z * z) * Float(0.3989422804014327)
            return cdf + z * density
        }
    }

    fileprivate func scalarTail(_ z: UnsafePointer<Float>, _ a: UnsafeMutablePointer<Float>, count: Int) {
        var x = SIMD8<Float>(repeating: 0)
        for j in 0..<count { x[j] = z[j] }
        let y = apply(x)
        for j in 0..<count { a[j] = y[j] }
    }
}

/// a = f(z) over one chunk.
private struct ActivationForwardChunk: ChunkJob {
    let activation: Activation
    let z: UnsafePointer<Float>
    let a: UnsafeMutablePointer<Float>

    func perform(_ range: Range<Int>) {
        var i = range.lowerBound
        while i + 8 <= range.upperBound {
            let x = UnsafeRawPointer(z + i).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(a + i).storeBytes(of: activation.apply(x), as: SIMD8<Float>.self)
            i += 8
        }
        if i < range.upperBound { activation.scalarTail(z + i, a + i, count: range.upperBound - i) }
    }
}

/// dz = da · f'(z) over one chunk.
private struct ActivationBackwardChunk: ChunkJob {
    let activation: Activation
    let z: UnsafePointer<Float>
    let a: UnsafePointer<Float>
    let da: UnsafePointer<Float>
    let dz: UnsafeMutablePointer<Float>

    func perform(_ range: Range<Int>) {
        var i = range.lowerBound
        while i + 8 <= range.upperBound {
            let zv = UnsafeRawPointer(z + i).loadUnaligned(as: SIMD8<Float>.self)
            let av = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self)
            let gv = UnsafeRawPointer(da + i).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(dz + i).storeBytes(of: gv * activation.derivative(zv, av), as: SIMD8<Float>.self)
            i += 8
        }
        while i < range.upperBound {
            var zv = SIMD8<Float>(repeating: 0), av = zv, gv = zv
            let n = min(8, range.upperBound - i)
            for j in 0..<n { zv[j] = z[i + j]; av[j] = a[i + j]; gv[j] = da[i + j] }
            let out = gv * activation.derivative(zv, av)
            for j in 0..<n { dz[i + j] = out[j] }
            i += n
        }
    }
}

/// Elements per thread below which activations and optimizer updates stay on one thread.
let elementwiseMinimumChunk = 16384
