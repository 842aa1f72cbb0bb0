import Foundation

/// How a step gets this rank's rows of a global batch: gathered when the step asks (`DirectBatches`), or read ahead
/// by a background thread while earlier steps run (`PrefetchedBatches`). Either way the step's buffers end up with
/// the same values; only the wait differs (the step's `.data` phase).
protocol BatchReader: AnyObject {
    /// Writes the normalized features and targets of `rows` to the step's buffers; `upcoming` are the row lists of
    /// the batches that follow in this epoch, nearest first (a reader may start on them).
    func read(_ rows: UnsafeBufferPointer<Int32>, upcoming: [ArraySlice<Int32>], features: UnsafeMutablePointer<Float>,
              targets: UnsafeMutablePointer<Float>, threads: Int)
    /// How many of the following batches it reads ahead (0: none).
    var depth: Int { get }
    /// Ends any background work (after a read in progress); the step calls it when it is done with the reader.
    func stop()
}

/// Gathers each batch when the step asks for it.
final class DirectBatches: BatchReader {
    let rows: TrainingRows
    var depth: Int { 0 }

    init(_ rows: TrainingRows) { self.rows = rows }

    func stop() {}

    func read(_ rows: UnsafeBufferPointer<Int32>, upcoming: [ArraySlice<Int32>], features: UnsafeMutablePointer<Float>,
              targets: UnsafeMutablePointer<Float>, threads: Int) {
        self.rows.gather(rows: rows, features: features, targets: targets, threads: threads)
    }
}

/// Reads up to `depth` batches ahead on a background thread, into buffers of its own; a batch it has ready is
/// copied into the step's buffers, one it has not is gathered then. A slot is used only for exactly the rows it
/// read, so a new epoch, a resume or a change of shares can never hand the step other rows.
final class PrefetchedBatches: BatchReader {
    /// One read-ahead buffer: the rows it holds or is to hold (nil: free), in which order it was queued, and whether
    /// its read has finished.
    private struct Slot {
        var rows: [Int32]?
        var queued = 0
        var ready = false
        let features: UnsafeMutablePointer<Float>
        let targets: UnsafeMutablePointer<Float>
    }

    let rows: TrainingRows
    let depth: Int
    private let capacity: Int
    private let condition = NSCondition()
    private var slots: [Slot]
    private var queuedCount = 0
    /// The slot the background thread is reading, if any.
    private var reading: Int?
    private var finished = false

    /// A reader `depth` batches ahead of the step, for shares of at most `capacity` rows.
    init(_ rows: TrainingRows, depth: Int, capacity: Int) {
        precondition(depth >= 1, "PrefetchedBatches: reads at least one batch ahead")
        (self.rows, self.depth, self.capacity) = (rows, depth, capacity)
        slots = (0..<depth).map { _ in
            Slot(features: .allocate(capacity: capacity * rows.featureCount), targets: .allocate(capacity: capacity * rows.targetCount))
        }
        // The thread holds the reader until `stop` ends it.
        let thread = Thread { self.work() }
        thread.name = "batch-prefetch"
        thread.start()
    }

    deinit {
        for slot in slots { slot.features.deallocate(); slot.targets.deallocate() }
    }

    func stop() {
        condition.lock()
        finished = true
        condition.broadcast()
        while reading != nil { condition.wait() }
        condition.unlock()
    }

    func read(_ rows: UnsafeBufferPointer<Int32>, upcoming: [ArraySlice<Int32>], features: UnsafeMutablePointer<Float>,
              targets: UnsafeMutablePointer<Float>, threads: Int) {
        let wanted = Array(rows), next = upcoming.prefix(depth).filter { $0.count <= capacity }.map { Array($0) }
        condition.lock()
        while let index = slots.firstIndex(where: { $0.rows == wanted }), !slots[index].ready { condition.wait() }
        let hit = slots.firstIndex { $0.rows == wanted }
        // Slots that hold neither this batch nor one of the next are free again (once their read is done).
        for index in slots.indices where index != hit && index != reading {
            if let held = slots[index].rows, !next.contains(held) { slots[index].rows = nil }
        }
        condition.unlock()
        if let hit {
            features.update(from: slots[hit].features, count: wanted.count * self.rows.featureCount)
            targets.update(from: slots[hit].targets, count: wanted.count * self.rows.targetCount)
        } else {
            self.rows.gather(rows: rows, features: features, targets: targets, threads: threads)
        }
        condition.lock()
        if let hit { slots[hit].rows = nil }
        for rows in next where !slots.contains(where: { $0.rows == rows }) {
            guard let free = slots.indices.first(where: { slots[$0].rows == nil && $0 != reading }) else { break }
            queuedCount += 1
            (slots[free].rows, slots[free].queued, slots[free].ready) = (rows, queuedCount, false)
        }
        condition.broadcast()
        condition.unlock()
    }

    /// The background thread: reads the queued slots in the order they were queued, one at a time (with one
    /// thread, so it does not take the step's workers).
    private func work() {
        condition.lock()
        while !finished {
            let pending = slots.indices.filter { slots[$0].rows != nil && !slots[$0].ready }
            guard let index = pending.min(by: { slots[$0].queued < slots[$1].queued }) else {
                condition.wait()
                continue
            }
            reading = index
            let rows = slots[index].rows!, features = slots[index].features, targets = slots[index].targets
            condition.unlock()
            rows.withUnsafeBufferPointer { self.rows.gather(rows: $0, features: features, targets: targets, threads: 1) }
            condition.lock()
            slots[index].ready = true
            reading = nil
            condition.broadcast()
        }
        condition.unlock()
    }
}
