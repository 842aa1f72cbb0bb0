import Foundation

/// How a step gets this rank's rows of a global batch: gathered when the step asks (`DirectBatches`), or read ahead
/// by a background thread while earlier steps run (`PrefetchedBatches`). Either way the step's buffers end up with
/// the same values; only the wait differs (the step's `.data` phase). Neither allocates per step.
protocol BatchReader: AnyObject {
    /// Writes the normalized features and targets of `rows` to the step's buffers; `upcoming(k)` are this rank's rows
    /// of the k-th batch after this one in the epoch (nil past its end; valid during the call), which a reader may
    /// start on.
    func read(_ rows: UnsafeBufferPointer<Int32>, upcoming: (Int) -> UnsafeBufferPointer<Int32>?,
              features: UnsafeMutablePointer<Float>, targets: UnsafeMutablePointer<Float>, threads: Int)
    /// Ends any background work (after a read in progress); the step calls it when it is done with the reader.
    func stop()
}

/// Gathers each batch when the step asks for it.
final class DirectBatches: BatchReader {
    let rows: TrainingRows

    init(_ rows: TrainingRows) { self.rows = rows }

    func read(_ rows: UnsafeBufferPointer<Int32>, upcoming: (Int) -> UnsafeBufferPointer<Int32>?,
              features: UnsafeMutablePointer<Float>, targets: UnsafeMutablePointer<Float>, threads: Int) {
        self.rows.gather(rows: rows, features: features, targets: targets, threads: threads)
    }

    func stop() {}
}

/// Reads up to `depth` batches ahead on a background thread, into buffers of its own; a batch it has ready is
/// copied into the step's buffers, one it has not is gathered then. A slot is used only for exactly the rows it
/// read, so a new epoch, a resume or a change of shares can never hand the step other rows.
final class PrefetchedBatches: BatchReader {
    /// One read-ahead buffer: the rows it holds or is to hold (when `held`), in which order it was queued, and
    /// whether its read has finished.
    private struct Slot {
        let rows: UnsafeMutablePointer<Int32>
        var count = 0
        var held = false
        var queued = 0
        var ready = false
        let features: UnsafeMutablePointer<Float>
        let targets: UnsafeMutablePointer<Float>

        func holds(_ other: UnsafeBufferPointer<Int32>) -> Bool {
            held && count == other.count && (count == 0 || memcmp(rows, other.baseAddress!, count * 4) == 0)
        }
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
            Slot(rows: .allocate(capacity: capacity), features: .allocate(capacity: capacity * rows.featureCount),
                 targets: .allocate(capacity: capacity * rows.targetCount))
        }
        // The thread holds the reader until `stop` ends it.
        let thread = Thread { self.work() }
        thread.name = "batch-prefetch"
        thread.start()
    }

    deinit {
        for slot in slots { slot.rows.deallocate(); slot.features.deallocate(); slot.targets.deallocate() }
    }

    func stop() {
        condition.lock()
        finished = true
        condition.broadcast()
        while reading != nil { condition.wait() }
        condition.unlock()
    }

    private func slot(holding rows: UnsafeBufferPointer<Int32>) -> Int? { slots.indices.first { slots[$0].holds(rows) } }

    func read(_ rows: UnsafeBufferPointer<Int32>, upcoming: (Int) -> UnsafeBufferPointer<Int32>?,
              features: UnsafeMutablePointer<Float>, targets: UnsafeMutablePointer<Float>, threads: Int) {
        condition.lock()
        while let index = slot(holding: rows), !slots[index].ready { condition.wait() }
        let hit = slot(holding: rows)
        // Slots that hold neither this batch nor one of the next are free again (once their read is done).
        for index in slots.indices where index != hit && index != reading && slots[index].held {
            let wanted = (1...depth).contains { upcoming($0).map(slots[index].holds) ?? false }
            if !wanted { slots[index].held = false }
        }
        condition.unlock()
        if let hit {
            features.update(from: slots[hit].features, count: rows.count * self.rows.featureCount)
            targets.update(from: slots[hit].targets, count: rows.count * self.rows.targetCount)
        } else {
            self.rows.gather(rows: rows, features: features, targets: targets, threads: threads)
        }
        condition.lock()
        if let hit { slots[hit].held = false }
        for ahead in 1...depth {
            guard let next = upcoming(ahead), next.count <= capacity, slot(holding: next) == nil else { continue }
            guard let free = slots.indices.first(where: { !slots[$0].held && $0 != reading }) else { break }
            if let base = next.baseAddress { slots[free].rows.update(from: base, count: next.count) }
            queuedCount += 1
            (slots[free].count, slots[free].held, slots[free].queued, slots[free].ready) = (next.count, true, queuedCount, false)
            // The disk reads every queued batch at once, while the thread gathers them one at a time.
            self.rows.willRead(rows: next)
        }
        condition.broadcast()
        condition.unlock()
    }

    /// The background thread: reads the queued slots in the order they were queued, one at a time (with one
    /// thread, so it does not take the step's workers).
    private func work() {
        condition.lock()
        while !finished {
            let pending = slots.indices.lazy.filter { self.slots[$0].held && !self.slots[$0].ready }
            guard let index = pending.min(by: { self.slots[$0].queued < self.slots[$1].queued }) else {
                condition.wait()
                continue
            }
            reading = index
            let slot = slots[index]
            condition.unlock()
            rows.gather(rows: UnsafeBufferPointer(start: slot.rows, count: slot.count), features: slot.features,
                        targets: slot.targets, threads: 1)
            condition.lock()
            slots[index].ready = true
            reading = nil
            condition.broadcast()
        }
        condition.unlock()
    }
}
