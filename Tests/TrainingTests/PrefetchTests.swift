@testable import DataParallel
@testable import Datasets
import Foundation
@testable import Training
import XCTest

/// The background reader hands the step exactly what gathering in the step gives, for the batches it read ahead and
/// for any others (a new epoch, a resume, other shares).
final class PrefetchTests: XCTestCase {
    func testReadAheadBatchesAreTheGatheredOnes() throws {
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("fixtures").appendingPathComponent("npy").path
        let data = try Dataset.load(.pair(features: fixtures + "/x-float64.npy", targets: fixtures + "/y2.npy"), format: .npy,
                                    targets: nil)
        XCTAssertTrue(data.readsFromFiles)
        try data.applyNormalization(.standardize)
        let order = EpochOrder(shuffle: .blocks, blockRows: 2, windowBlocks: 2).rows(count: data.count, seed: 9, epoch: 1)
        let batch = 2, width = data.featureCount, batches = (order.count + batch - 1) / batch
        try order.withUnsafeBufferPointer { order in
            func slice(_ index: Int) -> UnsafeBufferPointer<Int32>? {
                index < batches ? UnsafeBufferPointer(rebasing: order[(index * batch)..<min((index + 1) * batch, order.count)]) : nil
            }
            for depth in [1, 2, 3] {
                let reader = PrefetchedBatches(data, depth: depth, capacity: batch)
                defer { reader.stop() }
                // The epoch in order, then batches out of order (what a resume or another epoch asks for).
                for index in Array(0..<batches) + [2, 0, 1, 1] {
                    var features = [Float](repeating: .nan, count: batch * width), targets = [Float](repeating: .nan, count: batch * 2)
                    var expected = features, expectedTargets = targets
                    let rows = try XCTUnwrap(slice(index))
                    // A reader must not look past `depth` batches ahead.
                    reader.read(rows, upcoming: { ahead in
                        XCTAssertLessThanOrEqual(ahead, depth)
                        return slice(index + ahead)
                    }, features: &features, targets: &targets, threads: 1)
                    data.gather(rows: rows, features: &expected, targets: &expectedTargets)
                    XCTAssertEqual(features.map(\.bitPattern), expected.map(\.bitPattern), "depth \(depth), batch \(index)")
                    XCTAssertEqual(targets.map(\.bitPattern), expectedTargets.map(\.bitPattern), "depth \(depth), batch \(index)")
                }
            }
        }
    }
}
