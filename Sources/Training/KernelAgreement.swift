import Distributed
import Kernels
import Support

/// Selects the SIMD kernel variant every rank of `communicator` runs and returns it.
///
/// Each rank asks for `PLEXUS_KERNEL` (auto: the widest its CPU and the build support); all ranks then take the
/// narrowest any of them asked for, so a mixed AVX2/AVX-512 cluster runs one variant (one set of bits). A bad
/// `PLEXUS_KERNEL` on any rank stops every rank with that rank's one line (status 2). Call it before any kernel runs.
public func agreeOnKernel(_ communicator: Communicator) throws -> KernelVariant {
    let requested = try collectively(communicator) {
        do {
            return try KernelVariant.requested()
        } catch let error as KernelSelectionError {
            throw UserError(error.description)
        }
    }
    // Every rank supports every variant narrower than the one it asked for, so the narrowest is runnable everywhere.
    let lanes = try communicator.allreduceMin(Int64(requested.lanes))
    let agreed = KernelVariant(lanes: Int(lanes)) ?? .avx2
    try KernelVariant.select(agreed)
    return agreed
}

/// Checks that every rank of `communicator` can run `precision`'s matrix products; a rank that cannot (bf16 without
/// AVX512_BF16) stops every rank with one line naming it, its CPU and what it lacks (status 2).
public func agreeOnPrecision(_ precision: MatrixPrecision, _ communicator: Communicator) throws {
    try collectively(communicator) {
        if let missing = precision.missingFeature {
            throw UserError("training.precision \(precision.rawValue): rank \(communicator.rank)'s CPU (\(MatrixPrecision.cpuModel)) "
                + "\(missing); use precision fp32 there")
        }
    }
}
