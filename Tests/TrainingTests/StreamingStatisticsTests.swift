@testable import Datasets
@testable import Distributed
import Foundation
import Kernels
import NeuralNet
@testable import Support
import XCTest

/// The statistics pass split across ranks: each rank reads only its slice of the rows, and the result is the single
/// pass's, bit for bit, on any number of ranks.
final class StreamingStatisticsTests: XCTestCase {
    /// Rows with a large common offset, so the two-pass order matters and a different summation would show.
    func rows(count: Int, width: Int, seed: UInt64) -> [Float] {
        var generator = SplitMix64(seed: seed)
        return (0..<(count * width)).map { Float(1e4 + 100 * generator.nextUnitDouble() + Double($0 % width)) }
    }

    func testPassOnAnyNumberOfRanksIsTheSinglePassReadingOnlyItsSlice() throws {
        let count = 1003, width = 7, values = rows(count: count, width: width, seed: 5)
        let data = try Dataset(features: values, targets: [Float](repeating: 0, count: count), featureCount: width)
        let single = try data.meanAndStandardDeviation()
        for ranks in [2, 3] {
            let read = NSLock()
            var ranges: [[Range<Int>]] = Array(repeating: [], count: ranks)
            let results = InProcessWorld.run(ranks: ranks) { communicator -> (mean: [Float], standardDeviation: [Float]) in
                let pass = data.featurePass
                let recording = RowPassSource(count: pass.count, width: pass.width) { range, output in
                    read.lock(); ranges[communicator.rank].append(range); read.unlock()
                    try pass.load(range, output)
                }
                return try recording.meanAndStandardDeviation(communicator: communicator)
            }
            for (rank, result) in results.enumerated() {
                let statistics = try result.get()
                XCTAssertEqual(statistics.mean, single.mean, "\(ranks) ranks, rank \(rank)")
                XCTAssertEqual(statistics.standardDeviation, single.standardDeviation, "\(ranks) ranks, rank \(rank)")
                let slice = chunkRange(rank, of: ranks, total: count)
                XCTAssertTrue(ranges[rank].allSatisfy { slice.contains($0.lowerBound) && $0.upperBound <= slice.upperBound },
                              "rank \(rank) of \(ranks) read outside its rows \(slice): \(ranges[rank])")
                // Two passes, each over the whole slice.
                XCTAssertEqual(ranges[rank].reduce(0) { $0 + $1.count }, 2 * slice.count)
            }
        }
    }

    func testRowsLeftInTheFileSplitAndNormalizeAsInMemory() throws {
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("fixtures").appendingPathComponent("npy").path
        let location = DataLocation.pair(features: fixtures + "/x-float64.npy", targets: fixtures + "/y2.npy")
        let options = DataOptions(normalize: .standardize, normalizeTargets: .none, validationFraction: 0.4, seed: 3, batchSize: 2)
        let copy = try Dataset.load(location, format: .npy, targets: nil)
        guard case .file = copy.features else { return XCTFail("float64 rows stay in the .npy file") }
        let inMemory = try Dataset(features: try copy.rawFeatureValues(), targets: copy.targets, featureCount: copy.featureCount,
                                   targetCount: copy.targetCount)
        let reference = try SplitData(train: inMemory, validation: nil, test: nil, options: options)
        let results = InProcessWorld.run(ranks: 2) { communicator -> [[Float]] in
            let data = try SplitData(train: .rows(try Dataset.load(location, format: .npy, targets: nil)), validation: nil, test: nil,
                                     options: options, communicator: communicator)
            return [data.train.offset, data.train.scale, try self.gatherAll(data.train), try self.gatherAll(data.validation!)]
        }
        let expected = [reference.train.offset, reference.train.scale, try gatherAll(reference.train),
                        try gatherAll(reference.validation!)]
        for result in results { XCTAssertEqual(try result.get(), expected) }
    }

    /// Every row of `data` as a training step gathers it (features, then targets).
    func gatherAll(_ data: Dataset) throws -> [Float] {
        let rows = (0..<data.count).map { Int32($0) }
        var features = [Float](repeating: 0, count: data.count * data.featureCount)
        var targets = [Float](repeating: 0, count: data.count * data.targetCount)
        rows.withUnsafeBufferPointer { rows in
            data.gather(rows: rows, features: &features, targets: &targets)
        }
        return features + targets
    }
}
