@testable import Config
@testable import Datasets
import NeuralNet
@testable import Support
import XCTest

final class EpochOrderTests: XCTestCase {
    func testBlocksVisitEveryRowOnceWindowByWindow() {
        let count = 1000, blockRows = 64, windowBlocks = 3
        let shape = EpochOrder(shuffle: .blocks, blockRows: blockRows, windowBlocks: windowBlocks)
        let order = shape.rows(count: count, seed: 7, epoch: 2)
        XCTAssertEqual(order.map(Int.init).sorted(), Array(0..<count))
        // The order is windows, each the rows of at most `windowBlocks` whole blocks (the short last block included):
        // walking it, a window closes once every row of the blocks it touched has come.
        func size(_ block: Int) -> Int { min(blockRows, count - block * blockRows) }
        var window = Set<Int>(), rowsInWindow = 0, closed = Set<Int>(), windows = 0
        for row in order.map(Int.init) {
            let block = row / blockRows
            XCTAssertFalse(closed.contains(block), "row \(row) comes after its block's window closed")
            window.insert(block)
            rowsInWindow += 1
            XCTAssertLessThanOrEqual(window.count, windowBlocks, "a window touches more than \(windowBlocks) blocks")
            if window.count == windowBlocks || closed.count + window.count == (count + blockRows - 1) / blockRows,
               rowsInWindow == window.reduce(0, { $0 + size($1) }) {
                closed.formUnion(window)
                window.removeAll()
                rowsInWindow = 0
                windows += 1
            }
        }
        XCTAssertTrue(window.isEmpty)
        XCTAssertEqual(windows, ((count + blockRows - 1) / blockRows + windowBlocks - 1) / windowBlocks)
        // Rows are mixed inside a window, not left as runs of their block.
        XCTAssertNotEqual(order.prefix(blockRows).map { Int($0) / blockRows }.count(where: { $0 == Int(order[0]) / blockRows }),
                          blockRows)
    }

    func testOrderIsSeedAndEpochAlone() {
        let shape = EpochOrder(shuffle: .blocks, blockRows: 10, windowBlocks: 2)
        XCTAssertEqual(shape.rows(count: 95, seed: 1, epoch: 0), shape.rows(count: 95, seed: 1, epoch: 0))
        XCTAssertNotEqual(shape.rows(count: 95, seed: 1, epoch: 0), shape.rows(count: 95, seed: 1, epoch: 1))
        XCTAssertNotEqual(shape.rows(count: 95, seed: 1, epoch: 0), shape.rows(count: 95, seed: 2, epoch: 0))
        XCTAssertEqual(EpochOrder(shuffle: .none).rows(count: 5, seed: 3, epoch: 4), [0, 1, 2, 3, 4])
        // `rows` is the permutation of all rows training has always used (existing runs keep their hashes).
        XCTAssertEqual(EpochOrder(shuffle: .rows).rows(count: 50, seed: 3, epoch: 4), epochPermutation(count: 50, seed: 3, epoch: 4))
    }

    func testConfigReadsShuffleNamesAndBooleans() throws {
        let base = "data: {train: /data/train}\nmodel: {layers: [{units: 10}]}\n"
        func shuffle(_ text: String?) throws -> Shuffle {
            try TrainingConfig.parse(base + (text.map { "training: {shuffle: \($0)}\n" } ?? ""), source: "c.yaml").training.shuffle
        }
        XCTAssertEqual(try shuffle(nil), .rows)
        XCTAssertEqual(try shuffle("true"), .rows)
        XCTAssertEqual(try shuffle("false"), .none)
        XCTAssertEqual(try shuffle("blocks"), .blocks)
        XCTAssertEqual(try shuffle("none"), .none)
        let config = try TrainingConfig.parse("data: {train: /d, shuffle_block_rows: 128}\nmodel: {layers: [{units: 10}]}\n"
            + "training: {shuffle: blocks}\n", source: "c.yaml")
        XCTAssertEqual(config.epochOrder, EpochOrder(shuffle: .blocks, blockRows: 128, windowBlocks: 8))
        XCTAssertEqual(try TrainingConfig.parse(config.yaml, source: "resolved.yaml"), config)
        XCTAssertThrowsError(try shuffle("sometimes")) { error in
            XCTAssertTrue((error as? UserError)?.message.contains("c.yaml:3") == true, "\(error)")
            XCTAssertTrue((error as? UserError)?.message.contains("training.shuffle") == true, "\(error)")
        }
    }
}
