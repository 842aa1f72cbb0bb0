import Dispatch
import Foundation
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

/// Runs `body(index)` for every index in `0..<count`, concurrently when `threads > 1`.
///
/// With `threads > 1` and `count > 1` the indices are handed to `DispatchQueue.concurrentPerform`,
/// so callers should make `count` equal to the number of independent work items (usually the
/// thread count) and must not assume any execution order.
public func parallelFor(count: Int, threads: Int, _ body: (Int) -> Void) {
    guard count > 0 else { return }
    if threads > 1 && count > 1 {
        DispatchQueue.concurrentPerform(iterations: count, execute: body)
    } else {
        for index in 0..<count { body(index) }
    }
}

/// The `index`-th of `parts` contiguous, near-equal chunks of `0..<total` (earlier chunks get the remainder).
public func chunkRange(_ index: Int, of parts: Int, total: Int) -> Range<Int> {
    precondition(parts > 0 && index >= 0 && index < parts, "chunkRange: index out of range")
    let base = total / parts
    let remainder = total % parts
    let start = index * base + min(index, remainder)
    let length = base + (index < remainder ? 1 : 0)
    return start..<(start + length)
}
