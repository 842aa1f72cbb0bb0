import NeuralNet

/// How the training rows are ordered each epoch (`training.shuffle`).
public enum Shuffle: String, CaseIterable, Sendable {
    /// A permutation of all rows, new every epoch.
    case rows
    /// Blocks of contiguous rows in a new order every epoch, then the rows within each window of blocks permuted:
    /// a batch reads from one window of the file, not from all of it.
    case blocks
    /// The rows in file order every epoch.
    case none
}

/// The order of the training rows in one epoch: a function of the row count, the seed, the epoch and the shuffle's
/// shape alone, so every rank, every layout and a resumed run see the same order.
public struct EpochOrder: Equatable, Sendable {
    public var shuffle: Shuffle
    /// Rows per block of `blocks` (the last block may be shorter).
    public var blockRows: Int
    /// Blocks per window whose rows `blocks` permutes together (the last window may be shorter).
    public var windowBlocks: Int

    /// An order of the given shape.
    public init(shuffle: Shuffle, blockRows: Int = 4096, windowBlocks: Int = 8) {
        precondition(blockRows >= 1 && windowBlocks >= 1, "EpochOrder: blocks and windows hold at least one row")
        (self.shuffle, self.blockRows, self.windowBlocks) = (shuffle, blockRows, windowBlocks)
    }

    /// The stream of the seed the block permutation is drawn from (apart from the rows' shuffle and the split).
    static let blockStream: UInt64 = 0x424C_4F43_4B00_0000 // "BLOCK"

    /// The rows 0..<count in the order epoch `epoch` visits them.
    public func rows(count: Int, seed: UInt64, epoch: Int) -> [Int32] {
        switch shuffle {
        case .rows: return epochPermutation(count: count, seed: seed, epoch: epoch)
        case .none: return (0..<count).map { Int32($0) }
        case .blocks: return blockOrder(count: count, seed: seed, epoch: epoch)
        }
    }

    // Shape: the blocks [b·B, (b+1)·B) in a permutation drawn from (seed, epoch); consecutive runs of W of them form
    // windows; each window's rows in a permutation drawn from (seed, epoch, window).
    private func blockOrder(count: Int, seed: UInt64, epoch: Int) -> [Int32] {
        let blockCount = (count + blockRows - 1) / blockRows
        let epochStream = EpochOrder.blockStream | UInt64(epoch & 0xFFFF_FFFF)
        let blocks = seededPermutation(count: blockCount, seed: seed, stream: epochStream)
        var order: [Int32] = []
        order.reserveCapacity(count)
        var window: [Int32] = []
        for (windowIndex, firstBlock) in stride(from: 0, to: blockCount, by: windowBlocks).enumerated() {
            window.removeAll(keepingCapacity: true)
            for block in blocks[firstBlock..<min(firstBlock + windowBlocks, blockCount)] {
                let start = Int(block) * blockRows
                window.append(contentsOf: (start..<min(start + blockRows, count)).map { Int32($0) })
            }
            let within = seededPermutation(count: window.count, seed: seed ^ (UInt64(windowIndex) &* SplitMix64.increment),
                                           stream: epochStream ^ 0x5749_4E00_0000) // "WIN"
            order.append(contentsOf: within.map { window[Int($0)] })
        }
        return order
    }
}
