import Foundation
@testable import Support
@testable import Training
import XCTest

/// Base for tests that write files: a fresh temporary directory per test, removed afterwards.
class TemporaryDirectoryTestCase: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "plexus-\(type(of: self))-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        _ = try? FileManager.default.removeItem(atPath: directory)
    }

    /// Writes `text` to `name` in the directory and returns its path.
    func write(_ text: String, _ name: String) throws -> String {
        try write(Array(text.utf8), name)
    }

    /// Writes `bytes` to `name` in the directory and returns its path.
    func write(_ bytes: [UInt8], _ name: String) throws -> String {
        let path = directory + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// The message of the UserError `body` throws ("no error", or a note when it throws something else).
    func errorMessage(_ body: () throws -> Any) -> String {
        do {
            _ = try body()
            return "no error"
        } catch {
            return (error as? UserError)?.message ?? "not a UserError: \(error)"
        }
    }
}
