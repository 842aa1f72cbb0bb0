// Statistics of the training rows fitted in one pass over them in row order, the pass split across the ranks: rank r
// reads only its slice of the rows and continues from the state rank r − 1 left, so the result is, bit for bit, the
// one a single pass over the whole file gives — on any number of ranks, from any format.
import Distributed
import Kernels
import Support

/// A statistic fitted in one pass over rows in order (a column's sums, counts, a vocabulary, a sketch): rows are
/// added a chunk at a time, and between ranks the pass hands on `state`.
protocol RowAccumulator {
    /// Adds `rows` rows of `width` values each (row-major, as Doubles), the next rows in order.
    mutating func accumulate(_ values: UnsafeBufferPointer<Double>, rows: Int, width: Int)
    /// Everything the pass so far has gathered, handed from one rank to the next.
    var state: [Double] { get set }
}

/// Per-column sums of the values (the first pass of `standardize`).
struct ColumnSums: RowAccumulator {
    var state: [Double]

    init(width: Int) { state = [Double](repeating: 0, count: width) }

    mutating func accumulate(_ values: UnsafeBufferPointer<Double>, rows: Int, width: Int) {
        state.withUnsafeMutableBufferPointer { sums in
            for row in 0..<rows {
                for column in 0..<width { sums[column] += values[row * width + column] }
            }
        }
    }
}

/// Per-column sums of squared deviations from a known mean (the second pass of `standardize`).
struct SquaredDeviations: RowAccumulator {
    var state: [Double]
    let mean: [Double]

    init(mean: [Double]) {
        self.mean = mean
        state = [Double](repeating: 0, count: mean.count)
    }

    mutating func accumulate(_ values: UnsafeBufferPointer<Double>, rows: Int, width: Int) {
        mean.withUnsafeBufferPointer { mean in
            state.withUnsafeMutableBufferPointer { squares in
                for row in 0..<rows {
                    for column in 0..<width {
                        let deviation = values[row * width + column] - mean[column]
                        squares[column] += deviation * deviation
                    }
                }
            }
        }
    }
}

/// Where a pass reads its rows: `count` rows of `width` values, any range of them written as Doubles.
struct RowPassSource {
    let count: Int
    let width: Int
    /// Writes rows `range` (row-major, `range.count × width`) as Doubles.
    let load: (_ range: Range<Int>, _ into: UnsafeMutableBufferPointer<Double>) throws -> Void

    /// A source of `count` rows of `width` values.
    init(count: Int, width: Int, load: @escaping (Range<Int>, UnsafeMutableBufferPointer<Double>) throws -> Void) {
        (self.count, self.width, self.load) = (count, width, load)
    }

    /// Runs `accumulator` over every row in order. With a communicator, rank r reads only its slice of the rows
    /// (`chunkRange`) after rank r − 1 handed it the state; every rank ends with the whole pass's state. A failure
    /// on any rank stops every rank with that rank's message.
    func pass<Accumulator: RowAccumulator>(_ accumulator: inout Accumulator, communicator: Communicator?) throws {
        guard let communicator, communicator.size > 1 else { return try accumulate(&accumulator, rows: 0..<count) }
        for stage in 0..<communicator.size {
            try collectively(communicator) {
                if stage == communicator.rank {
                    try accumulate(&accumulator, rows: chunkRange(stage, of: communicator.size, total: count))
                }
            }
            var length = Int64(accumulator.state.count)
            try withUnsafeMutableBytes(of: &length) { try communicator.broadcast($0, root: stage) }
            if communicator.rank != stage { accumulator.state = [Double](repeating: 0, count: Int(length)) }
            try accumulator.state.withUnsafeMutableBytes { try communicator.broadcast($0, root: stage) }
        }
    }

    /// Adds `rows` to `accumulator` a chunk of rows at a time.
    private func accumulate<Accumulator: RowAccumulator>(_ accumulator: inout Accumulator, rows: Range<Int>) throws {
        let chunkRows = max(1, 1024 * 64 / max(width, 1))
        var scratch = [Double](repeating: 0, count: min(chunkRows, max(rows.count, 1)) * width)
        try scratch.withUnsafeMutableBufferPointer { scratch in
            for start in stride(from: rows.lowerBound, to: rows.upperBound, by: chunkRows) {
                let chunk = start..<min(start + chunkRows, rows.upperBound)
                let values = UnsafeMutableBufferPointer(rebasing: scratch[0..<(chunk.count * width)])
                try load(chunk, values)
                accumulator.accumulate(UnsafeBufferPointer(values), rows: chunk.count, width: width)
            }
        }
    }

    /// Per-column mean and population standard deviation, in two passes (mean, then squared deviations, which stays
    /// accurate for columns with a large common offset); a constant column gets standard deviation 1 so it maps to
    /// 0 rather than NaN.
    func meanAndStandardDeviation(communicator: Communicator?) throws -> (mean: [Float], standardDeviation: [Float]) {
        var sums = ColumnSums(width: width)
        try pass(&sums, communicator: communicator)
        let mean = sums.state.map { $0 / Double(max(count, 1)) }
        var squares = SquaredDeviations(mean: mean)
        try pass(&squares, communicator: communicator)
        let deviation = squares.state.map { sum -> Float in
            let value = Float((sum / Double(max(count, 1))).squareRoot())
            return value > 0 && value.isFinite ? value : 1
        }
        return (mean.map { Float($0) }, deviation)
    }
}
