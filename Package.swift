// swift-tools-version:6.0
import Foundation
import PackageDescription

// Builds target this machine's CPU so the SIMD kernels become AVX2/FMA or AVX-512 code (0.5 vs 43 GFLOP/s
// measured without and with it on AVX2); debug builds too, so the tests run the instructions releases run.
// Both kernel variants (avx2, avx512) exist in a build only if its target CPU has AVX-512; the one used is chosen at
// start-up (Sources/Kernels/KernelVariant.swift). For a binary that must run on other x86-64 machines set
// PLEXUS_TARGET_CPU to the oldest of them, e.g. `PLEXUS_TARGET_CPU=haswell swift build -c release` (AVX2 + FMA;
// avx2 kernels only) or skylake-avx512 (both),
// in a scratch path of its own. launch/package builds the portable package that way.
let targetCPU = ProcessInfo.processInfo.environment["PLEXUS_TARGET_CPU"] ?? "native"
let fastMath: [SwiftSetting] = [
    .unsafeFlags(["-target-cpu", targetCPU]),
]
// Kernels and NeuralNet are optimized in debug builds as well: the tests then check the code releases run (register tiles,
// specialized generics), and in seconds rather than minutes.
let optimizedKernels: [SwiftSetting] = fastMath + [.unsafeFlags(["-O"], .when(configuration: .debug))]

let package = Package(
    name: "Plexus",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "plexus", targets: ["plexus"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CCPU"),
        .target(name: "Support"),
        .target(name: "Kernels", dependencies: ["CCPU"], swiftSettings: optimizedKernels),
        .target(name: "NeuralNet", dependencies: ["Kernels"], swiftSettings: optimizedKernels),
        .target(name: "Distributed", dependencies: ["CMPI", "Kernels", "Support"], swiftSettings: fastMath),
        .target(name: "Formats", dependencies: ["Support", "CZlib"], swiftSettings: fastMath),
        .target(name: "Tables", dependencies: ["Formats", "Support"], swiftSettings: fastMath),
        .target(name: "Datasets", dependencies: ["Formats", "Kernels", "NeuralNet", "Support", "Tables"], swiftSettings: fastMath),
        .target(name: "DataParallel", dependencies: ["Distributed", "Formats", "Kernels", "NeuralNet", "Support"],
                swiftSettings: fastMath),
        .target(name: "Config",
                dependencies: ["Datasets", "DataParallel", "Distributed", "NeuralNet", "Observe", "Support",
                               .product(name: "Yams", package: "Yams")],
                swiftSettings: fastMath),
        .target(name: "Observe", dependencies: ["DataParallel", "Distributed", "Formats", "NeuralNet", "Support"],
                swiftSettings: fastMath),
        .target(name: "Training",
                dependencies: ["Config", "Datasets", "DataParallel", "Distributed", "Formats", "Kernels", "NeuralNet", "Observe",
                               "Support"],
                swiftSettings: fastMath),
        .target(name: "Benchmarks",
                dependencies: ["Training", "Config", "DataParallel", "Distributed", "Kernels", "NeuralNet", "Observe", "Support"],
                swiftSettings: fastMath),
        .executableTarget(name: "plexus",
                          dependencies: ["Training", "Benchmarks", "Distributed", "Support",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: fastMath),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels"], swiftSettings: fastMath),
        .testTarget(name: "NeuralNetTests", dependencies: ["NeuralNet", "Kernels"], swiftSettings: fastMath),
        .testTarget(name: "DistributedTests", dependencies: ["Distributed"], swiftSettings: fastMath),
        .testTarget(name: "TrainingTests",
                    dependencies: ["Training", "Benchmarks", "Config", "Datasets", "DataParallel", "Distributed", "Formats",
                                   "Kernels", "NeuralNet", "Observe", "Support"],
                    swiftSettings: fastMath),
        .testTarget(name: "IntegrationTests",
                    dependencies: ["Training", "Config", "Datasets", "DataParallel", "Formats", "Observe", "Support"],
                    swiftSettings: fastMath),
    ],
    swiftLanguageModes: [.v5]
)
