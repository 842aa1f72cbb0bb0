import Dispatch
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Number of CPUs this process may run on (its affinity mask), at least 1.
public func availableCPUCount() -> Int {
    #if os(Linux)
    // Glibc's module map hides sched_getaffinity (it needs _GNU_SOURCE), so look it up at run time.
    typealias GetAffinity = @convention(c) (Int32, Int, UnsafeMutableRawPointer) -> Int32
    if let symbol = dlsym(nil, "sched_getaffinity") {
        let getAffinity = unsafeBitCast(symbol, to: GetAffinity.self)
        // A 1024-CPU mask (the size of glibc's cpu_set_t); count its set bits.
        var mask = [UInt64](repeating: 0, count: 16)
        let status = mask.withUnsafeMutableBytes { getAffinity(0, $0.count, $0.baseAddress!) }
        let count = mask.reduce(0) { $0 + $1.nonzeroBitCount }
        if status == 0 && count > 0 { return count }
    }
    #endif
    return max(1, ProcessInfo.processInfo.activeProcessorCount)
}

/// Elements per thread below which an elementwise loop (activations, optimizer, gather, fixed-point sums, ...)
/// stays on one thread: waking a worker and sharing the cache lines costs about as much as this much work.
public let minimumElementsPerThread = 16384

/// The work of one parallel region: `perform(index)` runs once for every index, on any thread, in any order.
public protocol ParallelJob {
    /// Does item `index` of the region.
    func perform(_ index: Int)
}

/// Runs `job.perform(index)` for every index in `0..<count`, concurrently when `threads > 1`.
///
/// With `threads > 1` and `count > 1` the indices go to min(threads, count) threads of a spinning
/// worker pool (the caller is one of them), so callers should make `count` equal to the number of
/// independent work items (usually the thread count) and must not assume any execution order.
/// No heap allocation: the job reaches the workers as a pointer to the caller's copy, through a
/// trampoline specialized for `Job` (hence `@inlinable`).
@inlinable
public func parallelFor<Job: ParallelJob>(count: Int, threads: Int, _ job: Job) {
    guard count > 0 else { return }
    guard threads > 1 && count > 1 else {
        for index in 0..<count { job.perform(index) }
        return
    }
    let ran = withUnsafePointer(to: job) { pointer in
        WorkerPool.shared.run(count: count, participants: min(threads, count), context: UnsafeRawPointer(pointer)) {
            context, index in context.assumingMemoryBound(to: Job.self).pointee.perform(index)
        }
    }
    // The pool is busy (a nested or concurrent call): fall back to Dispatch.
    if !ran { DispatchQueue.concurrentPerform(iterations: count) { job.perform($0) } }
}

/// Runs `body(index)` for every index in `0..<count`, like the `ParallelJob` form.
///
/// Convenient, but handing a closure to other threads costs one small heap allocation per call
/// (Swift's `withoutActuallyEscaping`), so the training step uses jobs.
public func parallelFor(count: Int, threads: Int, _ body: (Int) -> Void) {
    withoutActuallyEscaping(body) { parallelFor(count: count, threads: threads, ClosureJob(body: $0)) }
}

private struct ClosureJob: ParallelJob {
    let body: (Int) -> Void
    func perform(_ index: Int) { body(index) }
}

/// A fixed set of worker threads that spin briefly between parallel regions, then sleep.
///
/// `DispatchQueue.concurrentPerform` on Linux wakes its workers through the kernel for every call,
/// which costs tens of microseconds — as much as a small GEMM of the training step. Workers here
/// spin for `spinNanoseconds` after each region, so the next region of the same step starts in
/// well under a microsecond; after that they sleep on a condition and cost nothing.
@usableFromInline
final class WorkerPool: @unchecked Sendable {
    @usableFromInline static let shared = WorkerPool()

    /// How long an idle worker keeps spinning before it sleeps.
    static let spinNanoseconds: UInt64 = 2_000_000

    // One job at a time: `busy` is taken by the caller for the whole region.
    private let busy = Atomic<Bool>(false)
    // Published by the caller with release ordering after the job fields below are written.
    private let generation = Atomic<Int>(0)
    // Workers that finished (or skipped) the current generation.
    private let finished = Atomic<Int>(0)
    private let sleepers = NSCondition()
    private var workers = 0
    // The current job; written only while every worker has acknowledged the previous generation.
    // `invoke` captures nothing (the job is behind `context`), so storing it allocates nothing.
    private var context: UnsafeRawPointer?
    private var invoke: ((UnsafeRawPointer, Int) -> Void)?
    private var count = 0
    private var participants = 0

    /// Runs invoke(context, 0..<count) on `participants` threads (the caller included); false if the pool is busy.
    @usableFromInline
    func run(count: Int, participants: Int, context: UnsafeRawPointer,
             _ invoke: @escaping (UnsafeRawPointer, Int) -> Void) -> Bool {
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        defer { busy.store(false, ordering: .releasing) }
        while workers < participants - 1 { spawnWorker() }
        self.context = context
        self.invoke = invoke
        self.count = count
        self.participants = participants
        finished.store(0, ordering: .relaxed)
        generation.wrappingAdd(1, ordering: .sequentiallyConsistent)
        // Wake sleeping workers (cheap when none sleep: no waiters, no system call).
        sleepers.lock()
        sleepers.broadcast()
        sleepers.unlock()
        var index = 0
        while index < count {
            invoke(context, index)
            index += participants
        }
        var spins = 0
        while finished.load(ordering: .acquiring) < workers {
            spins += 1
            if spins > 1000 { sched_yield() }
        }
        self.context = nil
        self.invoke = nil
        return true
    }

    private func spawnWorker() {
        let worker = workers + 1  // the caller is participant 0
        workers += 1
        let start = generation.load(ordering: .relaxed)
        let thread = Thread { [unowned self] in self.work(as: worker, after: start) }
        thread.name = "plexus-worker-\(worker)"
        thread.stackSize = 1 << 20
        thread.start()
    }

    // A function of its own so this thread's copy of `invoke` is released before it reports done
    // (a closure job's withoutActuallyEscaping checks that no reference outlives the region).
    @inline(never)
    private func runShare(of worker: Int) {
        guard worker < participants, let invoke, let context else { return }
        var index = worker
        while index < count {
            invoke(context, index)
            index += participants
        }
    }

    private func work(as worker: Int, after start: Int) -> Never {
        var seen = start
        while true {
            var spins = 0
            var deadline: UInt64 = 0
            while generation.load(ordering: .sequentiallyConsistent) == seen {
                spins += 1
                if spins & 255 != 0 { continue }
                let now = DispatchTime.now().uptimeNanoseconds
                if deadline == 0 {
                    deadline = now + WorkerPool.spinNanoseconds
                } else if now > deadline {
                    sleepers.lock()
                    while generation.load(ordering: .sequentiallyConsistent) == seen { sleepers.wait() }
                    sleepers.unlock()
                } else {
                    sched_yield()
                }
            }
            seen = generation.load(ordering: .acquiring)
            runShare(of: worker)
            finished.wrappingAdd(1, ordering: .releasing)
        }
    }
}

/// The `index`-th of `parts` contiguous, near-equal chunks of `0..<total` (earlier chunks get the remainder), cut at
/// multiples of `granule` (the last chunk ends at `total`).
public func chunkRange(_ index: Int, of parts: Int, total: Int, granule: Int = 1) -> Range<Int> {
    precondition(parts > 0 && index >= 0 && index < parts, "chunkRange: index out of range")
    let units = (total + granule - 1) / granule, base = units / parts, remainder = units % parts
    let start = index * base + min(index, remainder), length = base + (index < remainder ? 1 : 0)
    return min(total, start * granule)..<min(total, (start + length) * granule)
}
