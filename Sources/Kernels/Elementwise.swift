// Chunked elementwise loops over flat Float buffers, written once for any vector width and split across threads.

/// The work of a chunked loop: `perform(range, as:)` for disjoint ranges that together cover `0..<count`, on any
/// thread, with the kernel variant's vector type.
public protocol ChunkJob {
    /// Does the elements in `range` (a chunk starting at a multiple of 16) with vectors of type `Vector`.
    func perform<Vector: FloatVector>(_ range: Range<Int>, as vector: Vector.Type)
}

/// Runs `job` over `0..<count` split into near-equal contiguous chunks (boundaries at multiples of 16, so vector
/// loops of every variant split cleanly), in parallel only when each thread gets at least `minimumChunk` elements.
@inlinable
public func forEachChunk<Job: ChunkJob>(count: Int, threads: Int, minimumChunk: Int = minimumElementsPerThread,
                                        variant: KernelVariant = .active, _ job: Job) {
    let parts = max(1, min(threads, count / max(1, minimumChunk)))
    parallelFor(count: parts, threads: parts, ChunkSplit(job: job, count: count, parts: parts, variant: variant))
}

/// Part `index` of `parts` of a chunked loop, for `parallelFor`.
@usableFromInline
struct ChunkSplit<Job: ChunkJob>: ParallelJob {
    @usableFromInline let job: Job
    @usableFromInline let count: Int
    @usableFromInline let parts: Int
    @usableFromInline let variant: KernelVariant

    @inlinable init(job: Job, count: Int, parts: Int, variant: KernelVariant) {
        (self.job, self.count, self.parts, self.variant) = (job, count, parts, variant)
    }

    @inlinable func perform(_ part: Int) {
        let range = chunkRange(part, of: parts, total: count, granule: 16)
        switch variant {
        case .avx2: job.perform(range, as: SIMD8<Float>.self)
        case .avx512: job.perform(range, as: SIMD16<Float>.self)
        }
    }
}

/// Which lanes of a vector step are in the loop's range: all of them, or the first `count` of the last step.
public struct VectorLanes {
    /// Lanes in range.
    public let count: Int
    /// Whether every lane is in range (then loads and stores are whole vectors).
    public let isFull: Bool

    @inlinable init(count: Int, isFull: Bool) { (self.count, self.isFull) = (count, isFull) }

    /// The in-range lanes at `pointer` (zeros beyond them).
    @inlinable @inline(__always)
    public func load<V: SIMD>(_ pointer: UnsafePointer<V.Scalar>) -> V {
        isFull ? V(loadingFrom: pointer) : V(loadingFrom: pointer, count: count)
    }

    /// Stores the in-range lanes of `value` at `pointer`.
    @inlinable @inline(__always)
    public func store<V: SIMD>(_ value: V, _ pointer: UnsafeMutablePointer<V.Scalar>) {
        if isFull { value.store(to: pointer) } else { value.store(to: pointer, count: count) }
    }
}

/// Calls `body(index, lanes)` for consecutive vectors of `V` covering `range`: whole vectors, then a last partial one.
///
/// The partial vector runs the same lane-wise code as the others, so an element's bits do not depend on its position
/// or on the vector width.
@inlinable @inline(__always)
public func forEachVector<V: FloatVector>(in range: Range<Int>, as _: V.Type, _ body: (_ index: Int, _ lanes: VectorLanes) -> Void) {
    var index = range.lowerBound
    while index + V.scalarCount <= range.upperBound {
        body(index, VectorLanes(count: V.scalarCount, isFull: true))
        index += V.scalarCount
    }
    if index < range.upperBound { body(index, VectorLanes(count: range.upperBound - index, isFull: false)) }
}

/// x[i] *= factor for i in 0..<count.
public func scale(_ x: UnsafeMutablePointer<Float>, count: Int, by factor: Float, threads: Int = 1,
                  variant: KernelVariant = .active) {
    forEachChunk(count: count, threads: threads, variant: variant, ScaleChunk(x: x, factor: factor))
}

private struct ScaleChunk: ChunkJob {
    let x: UnsafeMutablePointer<Float>
    let factor: Float

    func perform<V: FloatVector>(_ range: Range<Int>, as _: V.Type) {
        let f = V(repeating: factor)
        forEachVector(in: range, as: V.self) { i, lanes in
            let value: V = lanes.load(x + i)
            lanes.store(value * f, x + i)
        }
    }
}

/// y[i] += a·x[i] for i in 0..<count (axpy; a fused multiply-add in every lane).
public func addProduct(_ x: UnsafePointer<Float>, scaledBy a: Float, to y: UnsafeMutablePointer<Float>,
                       count: Int, threads: Int = 1, variant: KernelVariant = .active) {
    forEachChunk(count: count, threads: threads, variant: variant, AddProductChunk(x: x, a: a, y: y))
}

private struct AddProductChunk: ChunkJob {
    let x: UnsafePointer<Float>
    let a: Float
    let y: UnsafeMutablePointer<Float>

    func perform<V: FloatVector>(_ range: Range<Int>, as _: V.Type) {
        let av = V(repeating: a)
        forEachVector(in: range, as: V.self) { i, lanes in
            let xv: V = lanes.load(x + i), yv: V = lanes.load(y + i)
            lanes.store(yv.addingProduct(av, xv), y + i)
        }
    }
}

/// x[i] = value for i in 0..<count.
public func fill(_ x: UnsafeMutablePointer<Float>, count: Int, with value: Float, threads: Int = 1) {
    forEachChunk(count: count, threads: threads, FillChunk(x: x, value: value))
}

private struct FillChunk: ChunkJob {
    let x: UnsafeMutablePointer<Float>
    let value: Float

    func perform<V: FloatVector>(_ range: Range<Int>, as _: V.Type) {
        (x + range.lowerBound).update(repeating: value, count: range.count)
    }
}

/// Elements per block of `sumOfSquares`: blocks are summed in order, so the result does not depend on threads.
/// Changing it changes the bits of the gradient norm.
private let sumOfSquaresBlock = 1 << 16

/// Σ x[i]² for i in 0..<count, accumulated in Double (same bits for any thread count and kernel variant).
public func sumOfSquares(_ x: UnsafePointer<Float>, count: Int, threads: Int = 1) -> Double {
    let blocks = sumOfSquaresChunkCount(count)
    guard blocks > 1 else { return sumOfSquaresSerial(x, count: count) }
    return withUnsafeTemporaryAllocation(of: Double.self, capacity: blocks) { partials in
        sumOfSquaresPartials(x, count: count, chunks: 0..<blocks, into: partials.baseAddress!, threads: threads)
        return sumOfPartials(partials.baseAddress!, chunks: blocks)
    }
}

/// How many fixed-size blocks `sumOfSquares` splits `count` values into.
public func sumOfSquaresChunkCount(_ count: Int) -> Int {
    max(1, (count + sumOfSquaresBlock - 1) / sumOfSquaresBlock)
}

/// The partial sums of squares of `sumOfSquares`'s blocks `chunks` (partials[i] for block i), so that several
/// ranks can each compute some and `sumOfPartials` gives `sumOfSquares`'s bits.
public func sumOfSquaresPartials(_ x: UnsafePointer<Float>, count: Int, chunks: Range<Int>, into partials: UnsafeMutablePointer<Double>,
                                 threads: Int = 1) {
    let parts = max(1, min(threads, chunks.count))
    parallelFor(count: parts, threads: parts, SumOfSquaresPart(x: x, count: count, chunks: chunks, parts: parts, partials: partials))
}

/// The partials of all `chunks` added in block order: `sumOfSquares` from its pieces.
public func sumOfPartials(_ partials: UnsafePointer<Double>, chunks: Int) -> Double {
    var total = 0.0
    for index in 0..<chunks { total += partials[index] }
    return total
}

/// Part `part` of `sumOfSquaresPartials`: the partial sums of its share of the blocks.
private struct SumOfSquaresPart: ParallelJob {
    let x: UnsafePointer<Float>
    let count: Int
    let chunks: Range<Int>
    let parts: Int
    let partials: UnsafeMutablePointer<Double>

    func perform(_ part: Int) {
        for offset in chunkRange(part, of: parts, total: chunks.count) {
            let start = (chunks.lowerBound + offset) * sumOfSquaresBlock
            partials[chunks.lowerBound + offset] = sumOfSquaresSerial(x + start, count: min(sumOfSquaresBlock, count - start))
        }
    }
}

// Σ x[count]²: `sumOfProducts` of x with itself.
private func sumOfSquaresSerial(_ x: UnsafePointer<Float>, count: Int) -> Double {
    sumOfProducts(x, x, count: count)
}

// Σ x[i]·y[i] over [count]: eight Double lanes, lane j summing the elements i ≡ j (mod 8) in order with fused
// multiply-adds, then the lanes and the tail. This order is the same whatever the vector width (an AVX-512 build keeps
// the eight lanes in one register), so the gradient norm has the same bits in every kernel variant.
func sumOfProducts(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, count: Int) -> Double {
    var lanes = SIMD8<Double>()
    var i = 0
    while i + 8 <= count {
        lanes = lanes.addingProduct(SIMD8<Double>(SIMD8<Float>(loadingFrom: x + i)), SIMD8<Double>(SIMD8<Float>(loadingFrom: y + i)))
        i += 8
    }
    var total = (lanes.lowHalf + lanes.highHalf).sum()
    while i < count {
        total += Double(x[i]) * Double(y[i])
        i += 1
    }
    return total
}
