// Packing buffers of the GEMM, reused across calls so the training step allocates nothing.

import Foundation

/// Packing buffers of one running GEMM task; grown on demand and reused across calls.
final class GemmWorkspace {
    private(set) var packedA: UnsafeMutablePointer<Float>
    private(set) var packedB: UnsafeMutablePointer<Float>
    /// Zero-padded copy of an edge tile of C (rows × columns of the largest tile, row stride its columns).
    let edgeTile: UnsafeMutablePointer<Float>
    /// Two lanes × lanes blocks for transposing a narrow C (`gemmViaTranspose`).
    let transposeStage: UnsafeMutablePointer<Float>
    /// One tile's fixed-point sums over the groups of a depth block (same shape as `edgeTile`).
    let fixedPointTile: UnsafeMutablePointer<Int64>
    private var transposedC: UnsafeMutablePointer<Float>
    private var capacityA = 0
    private var capacityTransposedC = 0
    private var capacityB = 0

    init() {
        packedA = GemmWorkspace.allocate(1)
        packedB = GemmWorkspace.allocate(1)
        edgeTile = GemmWorkspace.allocate(gemmLargestTile)
        fixedPointTile = .allocate(capacity: gemmLargestTile)
        transposeStage = GemmWorkspace.allocate(2 * 16 * 16)
        transposedC = GemmWorkspace.allocate(1)
    }

    deinit {
        packedA.deallocate()
        packedB.deallocate()
        edgeTile.deallocate()
        fixedPointTile.deallocate()
        transposeStage.deallocate()
        transposedC.deallocate()
    }

    /// Scratch of at least `count` floats for `gemmViaTranspose`'s Cᵀ.
    func reserveTransposedC(_ count: Int) -> UnsafeMutablePointer<Float> {
        if count > capacityTransposedC {
            transposedC.deallocate()
            transposedC = GemmWorkspace.allocate(count)
            capacityTransposedC = count
        }
        return transposedC
    }

    /// Makes room for `a` floats of packed A and `b` floats of packed B.
    func reserve(a: Int, b: Int) {
        if a > capacityA {
            packedA.deallocate()
            packedA = GemmWorkspace.allocate(a)
            capacityA = a
        }
        if b > capacityB {
            packedB.deallocate()
            packedB = GemmWorkspace.allocate(b)
            capacityB = b
        }
    }

    private static func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
        UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Float>.stride, alignment: 64)
            .bindMemory(to: Float.self, capacity: count)
    }
}

/// Process-wide free list of GEMM workspaces.
///
/// Each GEMM task takes a workspace for its duration and returns it, so concurrent GEMM calls from
/// any threads are safe, and after warm-up (one workspace per simultaneously running task, buffers
/// grown to the largest shape seen) a call performs no heap allocation. Memory is never released.
final class GemmWorkspacePool: @unchecked Sendable {
    private let lock = NSLock()
    private var available: [GemmWorkspace] = []

    func take() -> GemmWorkspace {
        lock.lock()
        defer { lock.unlock() }
        return available.popLast() ?? GemmWorkspace()
    }

    func give(_ workspace: GemmWorkspace) {
        lock.lock()
        defer { lock.unlock() }
        available.append(workspace)
    }
}

let gemmWorkspaces = GemmWorkspacePool()
