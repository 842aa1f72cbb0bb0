import Foundation
import XCTest

/// Runs the built `plexus` binary (and mpirun) the way a user would.
enum PlexusProcess {
    /// The release binary: $PLEXUS_BINARY, or .build/release/plexus in this package.
    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["PLEXUS_BINARY"] { return path }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/release/plexus").path
    }

    /// The repository root (for Configs/ and fixtures).
    static var root: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    struct Result {
        var status: Int32
        var standardOutput: String
        var standardError: String
    }

    /// A process for `executable` with OpenMPI's run-as-root permission when root; not started.
    static func configured(_ executable: String, _ arguments: [String]) -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        if getuid() == 0 {
            environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
            environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        }
        process.environment = environment
        return process
    }

    /// Starts `executable` in the background with its output discarded (for tests that signal or kill it).
    static func start(_ executable: String, _ arguments: [String]) throws -> Process {
        let process = configured(executable, arguments)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Waits up to `seconds` for `process` to exit; true if it did.
    static func wait(for process: Process, seconds: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        return !process.isRunning
    }

    /// Runs `executable` with `arguments`, waiting at most `timeout` seconds (then kills it and fails).
    static func run(_ executable: String, _ arguments: [String], timeout: TimeInterval = 120,
                    file: StaticString = #filePath, line: UInt = #line) throws -> Result {
        let process = configured(executable, arguments)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("plexus-io-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let outURL = directory.appendingPathComponent("out"), errURL = directory.appendingPathComponent("err")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
            XCTFail("\(executable) \(arguments.joined(separator: " ")) did not finish within \(timeout)s", file: file, line: line)
        }
        process.waitUntilExit()
        return Result(status: process.terminationStatus,
                      standardOutput: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
                      standardError: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
    }

    /// Skips when run by hand without a release build; fails under ./launch/test, which sets PLEXUS_BINARY.
    static func requireBinary() throws {
        guard !FileManager.default.isExecutableFile(atPath: binary) else { return }
        if ProcessInfo.processInfo.environment["PLEXUS_BINARY"] != nil {
            throw CommandFailure("PLEXUS_BINARY=\(binary) is not an executable")
        }
        throw XCTSkip("no release binary at \(binary): run ./launch/test (it builds it)")
    }

    struct CommandFailure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// Runs `plexus` directly (a world of size 1).
    static func plexus(_ arguments: [String], timeout: TimeInterval = 120, file: StaticString = #filePath,
                       line: UInt = #line) throws -> Result {
        try requireBinary()
        return try run(binary, arguments, timeout: timeout, file: file, line: line)
    }

    /// Runs `plexus` under `mpirun -np ranks` with extra mpirun options.
    static func mpirun(ranks: Int, options: [String] = [], _ arguments: [String], timeout: TimeInterval = 180,
                       file: StaticString = #filePath, line: UInt = #line) throws -> Result {
        try requireBinary()
        let mpirun = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let mpirun else { throw XCTSkip("mpirun is not installed: run ./launch/test (it installs OpenMPI)") }
        return try run(mpirun, ["-np", String(ranks), "--oversubscribe"] + options + [binary] + arguments,
                       timeout: timeout, file: file, line: line)
    }

    /// A fresh temporary directory, removed by the caller's teardown.
    static func temporaryDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("plexus-test-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}

/// Base for tests that run the binary in a fresh temporary directory, removed afterwards.
class TemporaryDirectoryTestCase: XCTestCase {
    var directory = ""

    override func setUpWithError() throws { directory = try PlexusProcess.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    /// `name` inside the directory.
    func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
}

/// Base for tests that train on the real Fashion-MNIST files in a fresh temporary directory.
class FashionMNISTTestCase: XCTestCase {
    var directory = ""

    /// The default config, which names the Fashion-MNIST files.
    var config: String { PlexusProcess.root + "/Configs/fashion-mnist.yaml" }

    override func setUpWithError() throws {
        guard FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") else {
            throw XCTSkip("dataset-fashion-mnist is not installed (./launch/test installs it)")
        }
        directory = try PlexusProcess.temporaryDirectory()
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    /// A run directory's summary.json.
    func summary(_ run: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run + "/summary.json"))) as! [String: Any]
    }

    /// A run directory's param_sha256.
    func sha(_ run: String) throws -> String {
        try XCTUnwrap(summary(run)["param_sha256"] as? String)
    }
}
