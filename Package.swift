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
// Fuzzing (Tests/fuzz/run.sh, in a scratch path of its own): PLEXUS_FUZZ_RUNTIME names libFuzzer's archive without a
// main; every target is then compiled optimized with coverage and AddressSanitizer, and each directory of
// Tests/fuzz/targets becomes an executable fuzz-NAME linked with that archive.
let fuzzRuntime = ProcessInfo.processInfo.environment["PLEXUS_FUZZ_RUNTIME"]
let fuzzInstrumentation: [SwiftSetting] = fuzzRuntime == nil ? [] : [.unsafeFlags(["-sanitize=fuzzer,address", "-O"])]
let fastMath: [SwiftSetting] = [
    .unsafeFlags(["-target-cpu", targetCPU]),
] + fuzzInstrumentation
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
        .target(name: "Support", swiftSettings: fuzzInstrumentation),
        .target(name: "Kernels", dependencies: ["CCPU"], swiftSettings: optimizedKernels),
        .target(name: "NeuralNet", dependencies: ["Kernels"], swiftSettings: optimizedKernels),
        .target(name: "Distributed", dependencies: ["CMPI", "Kernels", "Support"], swiftSettings: fastMath),
        .target(name: "Formats", dependencies: ["Support", "CZlib"], swiftSettings: fastMath),
        .target(name: "Tables", dependencies: ["Formats", "Support"], swiftSettings: fastMath),
        .target(name: "Metrics", swiftSettings: fastMath),
        .target(name: "Parquet", dependencies: ["Formats", "Support"], swiftSettings: fastMath),
        .target(name: "HDF5", dependencies: ["Formats", "Support"], swiftSettings: fastMath),
        .target(name: "Datasets", dependencies: ["Distributed", "Formats", "HDF5", "Kernels", "NeuralNet", "Parquet", "Support",
                                                 "Tables"],
                swiftSettings: fastMath),
        .target(name: "DataParallel", dependencies: ["Distributed", "Formats", "Kernels", "NeuralNet", "Support"],
                swiftSettings: fastMath),
        .target(name: "Config",
                dependencies: ["Datasets", "DataParallel", "Distributed", "Kernels", "NeuralNet", "Observe", "Support", "Tables",
                               .product(name: "Yams", package: "Yams")],
                swiftSettings: fastMath),
        .target(name: "Observe", dependencies: ["DataParallel", "Distributed", "Formats", "NeuralNet", "Support"],
                swiftSettings: fastMath),
        .target(name: "ONNX", dependencies: ["Formats", "NeuralNet"], swiftSettings: fastMath),
        .target(name: "Training",
                dependencies: ["Config", "Datasets", "DataParallel", "Distributed", "Formats", "Kernels", "NeuralNet", "Observe",
                               "Metrics", "ONNX", "Support", "Tables"],
                swiftSettings: fastMath),
        .target(name: "StarterConfig", dependencies: ["Config", "Datasets", "Formats", "Parquet", "Support", "Tables"],
                swiftSettings: fastMath),
        // `plexus --version` names the commit: the plugin writes VERSION and `git describe` into CommandLineText at
        // build time (Sources/BuildIdentity/plugin.swift says why not here).
        .plugin(name: "BuildIdentity", capability: .buildTool(), path: "Sources/BuildIdentity"),
        .target(name: "CommandLineText", dependencies: ["Distributed", "Kernels", "Support"], swiftSettings: fastMath,
                plugins: ["BuildIdentity"]),
        .target(name: "Benchmarks",
                dependencies: ["Training", "Config", "DataParallel", "Distributed", "Kernels", "NeuralNet", "Observe", "Support"],
                swiftSettings: fastMath),
        .executableTarget(name: "plexus",
                          dependencies: ["Training", "Benchmarks", "CommandLineText", "Distributed", "StarterConfig", "Support",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: fastMath),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels"], swiftSettings: fastMath),
        .testTarget(name: "NeuralNetTests", dependencies: ["NeuralNet", "Kernels"], swiftSettings: fastMath),
        .testTarget(name: "DistributedTests", dependencies: ["Distributed", "Kernels", "NeuralNet", "Support"], swiftSettings: fastMath),
        .testTarget(name: "ONNXTests", dependencies: ["ONNX", "NeuralNet"], swiftSettings: fastMath),
        .testTarget(name: "CommandLineTextTests", dependencies: ["CommandLineText"], swiftSettings: fastMath),
        .testTarget(name: "TrainingTests",
                    dependencies: ["Training", "Benchmarks", "Config", "Datasets", "DataParallel", "Distributed", "Formats",
                                   "HDF5", "Kernels", "Metrics", "NeuralNet", "Observe", "Parquet", "Support", "Tables"],
                    swiftSettings: fastMath),
        .testTarget(name: "IntegrationTests",
                    dependencies: ["Training", "Config", "Datasets", "DataParallel", "Distributed", "Formats", "Kernels", "NeuralNet", "Observe",
                                   "Support"],
                    swiftSettings: fastMath),
    ],
    swiftLanguageModes: [.v5]
)

if let fuzzRuntime {
    let directory = Context.packageDirectory + "/Tests/fuzz/targets"
    let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { name in
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: directory + "/" + name, isDirectory: &isDirectory) && isDirectory.boolValue
    }
    package.targets.append(.target(name: "FuzzSupport", dependencies: ["Datasets", "Support"], path: "Tests/fuzz/support",
                                   swiftSettings: fastMath))
    for name in names.sorted() {
        package.targets.append(.executableTarget(
            name: "fuzz-\(name)",
            dependencies: ["FuzzSupport", "Config", "Datasets", "Formats", "HDF5", "Parquet", "Support"],
            path: "Tests/fuzz/targets/\(name)", swiftSettings: fastMath,
            linkerSettings: [.unsafeFlags(["-sanitize=address", "-use-ld=lld", "-Xlinker", fuzzRuntime, "-lstdc++"])]))
    }
}
