import Foundation
import Kernels
import NeuralNet
import Support

/// One matrix product of a dense layer's training step, as `plexus bench gemm` times it.
struct GemmShape: Equatable, Sendable {
    /// Which product of the layer: forward (x·Wᵀ), input gradient (dY·W) or weight gradient (dYᵀ·x).
    enum Product: String, Sendable {
        case forward, inputGradient = "input_gradient", weightGradient = "weight_gradient"
    }

    let product: Product
    /// Rows of the output C.
    let m: Int
    /// Columns of the output C.
    let n: Int
    /// Depth of the sum.
    let k: Int

    /// Whether op(A) is read transposed (weight gradient: dYᵀ).
    var transposeA: Bool { product == .weightGradient }
    /// Whether op(B) is read transposed (forward: Wᵀ).
    var transposeB: Bool { product == .forward }
    /// The layout as BLAS spells it: N or T for A, then for B.
    var layout: String { (transposeA ? "T" : "N") + (transposeB ? "T" : "N") }
    /// Floating-point operations of one call: 2·m·n·k.
    var flops: Double { 2 * Double(m) * Double(n) * Double(k) }

    /// The product `bench step` measures the GEMM's peak rate with: large enough that packing and threads cost little.
    static let peak = GemmShape(product: .forward, m: 1024, n: 1024, k: 1024)

    /// The products one training step of an MLP with these widths computes at `batch` rows (first layer's input gradient excluded, as in training).
    static func trainingShapes(widths: [Int], batch: Int) -> [GemmShape] {
        var shapes: [GemmShape] = []
        for (index, (input, output)) in zip(widths, widths.dropFirst()).enumerated() {
            shapes.append(GemmShape(product: .forward, m: batch, n: output, k: input))
            if index > 0 { shapes.append(GemmShape(product: .inputGradient, m: batch, n: input, k: output)) }
            shapes.append(GemmShape(product: .weightGradient, m: output, n: input, k: batch))
        }
        return shapes
    }

    /// The shapes of the default config (784-256-128-10) and the benchmark net (784-512-256-10) at `batch` rows, without repeats.
    static func benchmarkShapes(batch: Int = 128) -> [GemmShape] {
        var unique: [GemmShape] = []
        for widths in [[784, 256, 128, 10], [784, 512, 256, 10]] {
            for shape in trainingShapes(widths: widths, batch: batch) where !unique.contains(shape) { unique.append(shape) }
        }
        return unique
    }
}

/// One timed GEMM shape.
struct GemmMeasurement: Sendable {
    let shape: GemmShape
    let threads: Int
    /// Best of the timed runs, in 10⁹ floating-point operations (2·m·n·k) per second.
    let gigaflops: Double
    /// Calls per timed run.
    let calls: Int
    /// The kernels that ran: the SIMD variant's name, with "-bf16" for bf16 products.
    let kernel: String
}

/// Times `plexus.gemm` on training shapes.
enum GemmBenchmark {
    /// Runs every shape at every thread count: best of `runs` timed runs, each repeating the call for at least `minimumSeconds`.
    static func measure(shapes: [GemmShape] = GemmShape.benchmarkShapes(), threads: [Int], runs: Int = 3,
                        minimumSeconds: Double = 0.2, precision: MatrixPrecision = .fp32) -> [GemmMeasurement] {
        var results: [GemmMeasurement] = []
        for threadCount in threads {
            for shape in shapes {
                results.append(measure(shape, threads: threadCount, runs: runs, minimumSeconds: minimumSeconds,
                                       precision: precision))
            }
        }
        return results
    }

    static func measure(_ shape: GemmShape, threads: Int, runs: Int, minimumSeconds: Double,
                        precision: MatrixPrecision = .fp32) -> GemmMeasurement {
        let (rowsA, columnsA) = shape.transposeA ? (shape.k, shape.m) : (shape.m, shape.k)
        let (rowsB, columnsB) = shape.transposeB ? (shape.n, shape.k) : (shape.k, shape.n)
        // Operands uniform in [-1, 1).
        var generator = SplitMix64(seed: UInt64(shape.m * 1_000_003 + shape.n * 1009 + shape.k))
        let a = (0..<(rowsA * columnsA)).map { _ in Float(2 * generator.nextUnitDouble() - 1) }
        let b = (0..<(rowsB * columnsB)).map { _ in Float(2 * generator.nextUnitDouble() - 1) }
        var c = [Float](repeating: 0, count: shape.m * shape.n)
        let flops = shape.flops
        return a.withUnsafeBufferPointer { aBuffer in
            b.withUnsafeBufferPointer { bBuffer in
                c.withUnsafeMutableBufferPointer { cBuffer in
                    let call = {
                        gemm(transposeA: shape.transposeA, transposeB: shape.transposeB, m: shape.m, n: shape.n, k: shape.k,
                             alpha: 1, a: aBuffer.baseAddress!, lda: columnsA, b: bBuffer.baseAddress!, ldb: columnsB,
                             beta: 0, c: cBuffer.baseAddress!, ldc: shape.n, threads: threads, precision: precision)
                    }
                    // Warm-up: grows the packing buffers and wakes the threads; also sizes a run.
                    var calls = 1
                    while true {
                        let seconds = time(calls, call)
                        if seconds >= minimumSeconds / 4 {
                            calls = max(1, Int((Double(calls) * minimumSeconds / seconds).rounded(.up)))
                            break
                        }
                        calls *= 4
                    }
                    var best = Double.infinity
                    for _ in 0..<runs { best = min(best, time(calls, call) / Double(calls)) }
                    return GemmMeasurement(shape: shape, threads: threads, gigaflops: flops / best / 1e9, calls: calls,
                                           kernel: precision.kernelName(.active))
                }
            }
        }
    }

    private static func time(_ calls: Int, _ body: () -> Void) -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<calls { body() }
        return Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
    }

    /// The measurements as a JSON array of {"m", "n", "k", "layout", "product", "threads", "kernel", "gflops"}.
    static func json(_ results: [GemmMeasurement]) -> String {
        let rows = results.map { result in
            "{\"m\": \(result.shape.m), \"n\": \(result.shape.n), \"k\": \(result.shape.k), "
                + "\"layout\": \"\(result.shape.layout)\", \"product\": \"\(result.shape.product.rawValue)\", "
                + "\"threads\": \(result.threads), \"kernel\": \"\(result.kernel)\", "
                + "\"gflops\": \(String(format: "%.2f", result.gigaflops))}"
        }
        return "[\n  " + rows.joined(separator: ",\n  ") + "\n]"
    }

    /// The measurements as an aligned text table.
    static func table(_ results: [GemmMeasurement]) -> String {
        let kernels = Set(results.map(\.kernel)).sorted().joined(separator: ", ")
        var lines = ["GEMM GFLOP/s (best of 3 runs of ≥0.2 s; C is m×n, depth k; kernel \(kernels))",
                     "product           layout      m      n      k  threads   GFLOP/s"]
        for result in results {
            let shape = result.shape
            lines.append(pad(shape.product.rawValue, 16) + "  " + pad(shape.layout, 6, left: true)
                + pad("\(shape.m)", 7, left: true) + pad("\(shape.n)", 7, left: true) + pad("\(shape.k)", 7, left: true)
                + pad("\(result.threads)", 9, left: true) + pad(String(format: "%.1f", result.gigaflops), 10, left: true))
        }
        return lines.joined(separator: "\n")
    }
}

/// Pads `text` with spaces to `width` on the right (or the left).
func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
    let fill = String(repeating: " ", count: max(0, width - text.count))
    return left ? fill + text : text + fill
}
