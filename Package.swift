// swift-tools-version:6.0
import Foundation
import PackageDescription

// Release builds target this machine's CPU so SIMD8<Float> becomes AVX2/FMA code (0.5 vs 43 GFLOP/s
// measured without and with it). For other machines set PLEXUS_TARGET_CPU to a CPU name (the clang
// importer takes names, not x86-64-v3 levels): `PLEXUS_TARGET_CPU=haswell swift build -c release`
// (AVX2 + FMA), in a scratch path of its own. launch/package builds the portable package that way.
let targetCPU = ProcessInfo.processInfo.environment["PLEXUS_TARGET_CPU"] ?? "native"
let fastMath: [SwiftSetting] = [
    .unsafeFlags(["-target-cpu", targetCPU], .when(configuration: .release)),
]

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
        .target(name: "Kernels", swiftSettings: fastMath),
        .target(name: "NeuralNet", dependencies: ["Kernels"], swiftSettings: fastMath),
        .target(name: "Distributed", dependencies: ["CMPI", "Kernels"], swiftSettings: fastMath),
        .target(name: "Training",
                dependencies: ["NeuralNet", "Distributed", "Kernels", "CZlib", .product(name: "Yams", package: "Yams")],
                swiftSettings: fastMath),
        .executableTarget(name: "plexus",
                          dependencies: ["Training", .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: fastMath),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels"]),
        .testTarget(name: "NeuralNetTests", dependencies: ["NeuralNet", "Kernels"]),
        .testTarget(name: "DistributedTests", dependencies: ["Distributed"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Kernels", "NeuralNet", "Distributed"]),
        .testTarget(name: "IntegrationTests", dependencies: ["Training"]),
    ],
    swiftLanguageModes: [.v5]
)
