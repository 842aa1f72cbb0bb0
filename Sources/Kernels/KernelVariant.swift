/// Kernels: SIMD GEMM (AVX2, AVX-512, AVX512_BF16) and elementwise kernels, fixed-point sums and their worker threads.

import CCPU
import Foundation
import Synchronization

/// A shape of the SIMD kernels: the vector width of every elementwise loop and the GEMM's register tile.
///
/// Every variant computes each output element with the same operations in the same order (one fma chain over k
/// per GEMM element, lane-wise elementwise math, reductions in a fixed order), so all variants give the same bits;
/// only speed differs. Swift has no per-function target attribute, so a variant exists in a build only if the
/// build's target CPU has its instructions: a native build on an AVX-512 machine holds both, a
/// `PLEXUS_TARGET_CPU=haswell` build only `avx2`.
public enum KernelVariant: String, CaseIterable, Comparable, Sendable {
    /// 8-lane vectors (one AVX2 register; the same source as two SSE or NEON registers elsewhere), 6×16 GEMM tile.
    case avx2
    /// 16-lane vectors (one AVX-512 register), 12×32 GEMM tile in 24 of the 32 vector registers.
    case avx512

    /// Floats per vector.
    public var lanes: Int { self == .avx2 ? 8 : 16 }

    /// The variant with `lanes` floats per vector (to agree across ranks on a number, e.g. the smallest), if any.
    public init?(lanes: Int) {
        guard let variant = KernelVariant.allCases.first(where: { $0.lanes == lanes }) else { return nil }
        self = variant
    }

    /// Rows × columns of C one GEMM micro-kernel call computes.
    public var tile: (rows: Int, columns: Int) { self == .avx2 ? (6, 16) : (12, 32) }

    /// Narrower first: the order in which ranks pick the variant all of them can run.
    public static func < (lhs: KernelVariant, rhs: KernelVariant) -> Bool { lhs.lanes < rhs.lanes }

    /// The variants this build holds, narrowest first (`avx512` only in builds for an AVX-512 target CPU).
    public static let inBuild: [KernelVariant] = allCases.filter { $0 == .avx2 || buildHasAVX512 }

    /// The variants this build can run on this CPU, narrowest first (empty if the build needs instructions the CPU lacks).
    public static let supported: [KernelVariant] = {
        guard buildRunsOnThisCPU else { return [] }
        return allCases.filter { variant in
            switch variant {
            case .avx2: return true  // the build's baseline code: checked by buildRunsOnThisCPU
            case .avx512: return buildHasAVX512 && CPUFeatures.current.avx512
            }
        }
    }()

    /// Whether this CPU has every vector instruction set the build was compiled for (if not, the binary may die
    /// with "Illegal instruction": rebuild it with `PLEXUS_TARGET_CPU` set to the oldest CPU it must run on).
    public static let buildRunsOnThisCPU: Bool =
        (!buildHasAVX2 || CPUFeatures.current.avx2) && (!buildHasAVX512 || CPUFeatures.current.avx512)

    /// The variant the kernels use unless told otherwise: `PLEXUS_KERNEL` if set and valid, else the widest supported.
    public static var active: KernelVariant { allCases[activeIndex.load(ordering: .relaxed)] }

    /// Makes `variant` the one the kernels use from now on (call it at start-up, before any parallel work).
    public static func select(_ variant: KernelVariant) throws {
        guard supported.contains(variant) else {
            throw KernelSelectionError("kernel \(variant.rawValue) is not supported by this CPU and build (supported: "
                                       + (supported.isEmpty ? "none" : supported.map(\.rawValue).joined(separator: ", ")) + ")")
        }
        activeIndex.store(allCases.firstIndex(of: variant)!, ordering: .relaxed)
    }

    /// The variant `PLEXUS_KERNEL` (auto, avx2 or avx512) asks for: the widest supported one for auto or unset.
    public static func requested(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> KernelVariant {
        let value = environment["PLEXUS_KERNEL"] ?? "auto"
        if value == "auto" || value.isEmpty {
            guard let widest = supported.last else {
                throw KernelSelectionError("this CPU lacks vector instructions the build was compiled for; rebuild with "
                                           + "PLEXUS_TARGET_CPU set to this CPU (e.g. haswell for AVX2)")
            }
            return widest
        }
        guard let variant = KernelVariant(rawValue: value) else {
            throw KernelSelectionError("PLEXUS_KERNEL=\(value): expected auto, "
                                       + allCases.map(\.rawValue).joined(separator: " or "))
        }
        guard supported.contains(variant) else {
            throw KernelSelectionError("PLEXUS_KERNEL=\(value): not supported by this CPU and build (supported: "
                                       + supported.map(\.rawValue).joined(separator: ", ") + ")")
        }
        return variant
    }

    // Until `select` is called: PLEXUS_KERNEL if it names a supported variant, else the widest supported one.
    private static let activeIndex = Atomic<Int>(
        allCases.firstIndex(of: (try? requested()) ?? supported.last ?? .avx2)!)

    private static var buildHasAVX2: Bool {
        #if canImport(CCPU.AVX2)
        return true
        #else
        return false
        #endif
    }

    private static var buildHasAVX512: Bool {
        #if canImport(CCPU.AVX512)
        return true
        #else
        return false
        #endif
    }
}

/// A kernel variant that cannot be used here, or an unknown `PLEXUS_KERNEL` value.
public struct KernelSelectionError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// The vector instruction sets this CPU has and the operating system enables (cpuid and XCR0).
struct CPUFeatures {
    /// AVX2 and FMA, with the OS saving the 256-bit registers.
    let avx2: Bool
    /// AVX-512 F, DQ, BW and VL (what every AVX-512 target from skylake-avx512 on compiles for), with the OS saving
    /// the 512-bit and mask registers.
    let avx512: Bool
    /// AVX512_BF16 (cpuid leaf 7 subleaf 1, EAX bit 5) on top of `avx512`: vdpbf16ps and vcvtne2ps2bf16.
    let avx512BF16: Bool
    /// The processor's brand string (cpuid 0x80000002...4), e.g. "AMD EPYC 9R45"; "unknown CPU" if it has none.
    let model: String

    static let current = CPUFeatures()

    private init() {
        #if !(arch(x86_64) || arch(i386))
        (avx2, avx512, avx512BF16, model) = (false, false, false, "unknown CPU")
        #else
        func cpuid(_ leaf: UInt32, _ subleaf: UInt32 = 0) -> (eax: UInt32, ebx: UInt32, ecx: UInt32, edx: UInt32) {
            var registers: (UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0)
            withUnsafeMutableBytes(of: &registers) { plexus_cpuid(leaf, subleaf, $0.baseAddress!.assumingMemoryBound(to: UInt32.self)) }
            return registers
        }
        let maximumLeaf = cpuid(0).eax
        let leaf1 = cpuid(1)
        let osSavesState = leaf1.ecx & (1 << 27) != 0  // OSXSAVE: xgetbv is usable
        var brand: [UInt8] = []
        if cpuid(0x8000_0000).eax >= 0x8000_0004 {
            for leaf: UInt32 in 0x8000_0002...0x8000_0004 {
                let r = cpuid(leaf)
                for word in [r.eax, r.ebx, r.ecx, r.edx] { for byte in 0..<4 { brand.append(UInt8(truncatingIfNeeded: word >> (8 * byte))) } }
            }
        }
        let name = String(decoding: brand.prefix { $0 != 0 }, as: UTF8.self).trimmingCharacters(in: .whitespaces)
        model = name.isEmpty ? "unknown CPU" : name
        guard maximumLeaf >= 7, osSavesState else {
            (avx2, avx512, avx512BF16) = (false, false, false)
            return
        }
        let xcr0 = plexus_xgetbv(0)
        let leaf7 = cpuid(7)
        let osYMM = xcr0 & 0x6 == 0x6        // SSE and AVX state
        let osZMM = xcr0 & 0xE6 == 0xE6      // plus opmask, ZMM0-15 upper halves and ZMM16-31
        let fma = leaf1.ecx & (1 << 12) != 0, avx = leaf1.ecx & (1 << 28) != 0
        let avx2Bit = leaf7.ebx & (1 << 5) != 0
        let avx512Bits: UInt32 = (1 << 16) | (1 << 17) | (1 << 30) | (1 << 31)  // F, DQ, BW, VL
        avx2 = osYMM && avx && fma && avx2Bit
        avx512 = avx2 && osZMM && leaf7.ebx & avx512Bits == avx512Bits
        avx512BF16 = avx512 && leaf7.eax >= 1 && cpuid(7, 1).eax & (1 << 5) != 0
        #endif
    }
}
