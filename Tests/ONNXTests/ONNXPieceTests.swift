import Foundation
import ONNX
import XCTest

/// The graph pieces, each written as a small model and checked by onnx.checker and against a reference that
/// Tests/scripts/fixtures/onnx_pieces.py computes with NumPy and scikit-learn from the same parameters, run in ONNX
/// Runtime (onnx, onnxruntime, numpy and scikit-learn from PyPI in the harnesses' cached venv).
final class ONNXPieceTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    let batch = ONNXDimension.named("N")

    /// Writes `graph` as DIRECTORY/NAME.onnx and its parameters as NAME.json.
    func write(_ graph: ONNXGraph, parameters: [String: Any], name: String, to directory: String) throws {
        try Data(graph.modelBytes(producer: "plexus-tests", producerVersion: "0")).write(to: URL(fileURLWithPath: "\(directory)/\(name).onnx"))
        try JSONSerialization.data(withJSONObject: parameters).write(to: URL(fileURLWithPath: "\(directory)/\(name).json"))
    }

    func missingValues(into directory: String) throws {
        let fills: [Float] = [1.5, -2, 0]
        var graph = ONNXGraph(name: "missing", reserving: ["filled", "indicator"])
        let x = graph.addInput("x", type: .float, shape: [batch, .size(3)])
        graph.addOutput(graph.addMissingFill(x, fills: fills), named: "filled", type: .float, shape: [batch, .size(3)])
        graph.addOutput(graph.addMissingIndicator(x), named: "indicator", type: .float, shape: [batch, .size(3)])
        try write(graph, parameters: ["fills": fills], name: "missing", to: directory)
    }

    func categories(into directory: String) throws {
        // Codes: the levels, then the missing level, then "other".
        let levels = ["blue", "green", "red"], missingValues = ["", "NA"]
        let table: [Float] = [0.5, -1, 2, 0.25, -3, 4, 7, 8, -0.5, 9]
        var graph = ONNXGraph(name: "categories", reserving: ["one_hot", "embedded"])
        let index = graph.addCategoryIndex(graph.addInput("color", type: .string, shape: [batch, .size(1)]), levels: levels,
                                           otherIndex: levels.count + 1, missingValues: missingValues, missingIndex: levels.count)
        graph.addOutput(graph.addOneHot(index, width: levels.count + 2), named: "one_hot", type: .float, shape: [batch, .size(5)])
        graph.addOutput(graph.addEmbedding(index, table: table, width: 2), named: "embedded", type: .float, shape: [batch, .size(2)])
        try write(graph, parameters: ["levels": levels, "missing_values": missingValues, "missing": levels.count,
                                      "other": levels.count + 1, "table": table, "width": 2], name: "categories", to: directory)
    }

    func quantiles(into directory: String) throws {
        // Five levels for two features, the second with tied quantiles; then the same two, a third of three levels
        // and a fourth with none, which passes unchanged (a column at a time).
        let quantiles: [[Double]] = [[-2, -0.5, 0.25, 1, 3.5], [0, 1, 1, 1, 2]], third: [Double] = [-1, 0.5, 2]
        let five = (0..<5).map { Double($0) / 4 }, three = [0, 0.5, 1.0]
        var graph = ONNXGraph(name: "quantiles", reserving: ["normal", "mixed"])
        let x = graph.addInput("x", type: .float, shape: [batch, .size(2)])
        graph.addOutput(graph.addQuantileNormalization(x, quantiles: quantiles, levels: [five, five]), named: "normal",
                        type: .float, shape: [batch, .size(2)])
        let wide = graph.addInput("x4", type: .float, shape: [batch, .size(4)])
        graph.addOutput(graph.addQuantileNormalization(wide, quantiles: quantiles + [third, []], levels: [five, five, three, []]),
                        named: "mixed", type: .float, shape: [batch, .size(4)])
        try write(graph, parameters: ["quantiles": quantiles + [third], "levels": [five, five, three]], name: "quantiles",
                  to: directory)
    }

    func classNames(into directory: String) throws {
        let names = ["Adelie", "Chinstrap", "Gentoo"]
        var graph = ONNXGraph(name: "classes", reserving: ["class_name"])
        let scores = graph.addInput("scores", type: .float, shape: [batch, .size(3)])
        graph.addOutput(graph.addClassName(scores, names: names), named: "class_name", type: .string, shape: [batch])
        try write(graph, parameters: ["names": names], name: "classes", to: directory)
    }

    func testPiecesMatchReferencesInONNXRuntime() throws {
        let setup = Process()
        setup.executableURL = URL(fileURLWithPath: "/bin/bash")
        setup.arguments = ["-c", "source launch/common.sh && source Tests/scripts/fixtures/python_venv.sh && "
            + "test_venv onnx onnxruntime numpy scikit-learn"]
        setup.currentDirectoryURL = URL(fileURLWithPath: Self.root)
        let output = Pipe()
        setup.standardOutput = output
        try setup.run()
        let found = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        setup.waitUntilExit()
        guard setup.terminationStatus == 0, let python = found.split(separator: "\n").last.map(String.init) else {
            throw XCTSkip("could not install onnx, onnxruntime, numpy and scikit-learn from PyPI into the test venv")
        }
        let directory = NSTemporaryDirectory() + "plexus-onnx-pieces-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try missingValues(into: directory)
        try categories(into: directory)
        try quantiles(into: directory)
        try classNames(into: directory)

        let check = Process()
        check.executableURL = URL(fileURLWithPath: python)
        check.arguments = [Self.root + "/Tests/scripts/fixtures/onnx_pieces.py", directory]
        let report = Pipe()
        check.standardOutput = report
        check.standardError = report
        try check.run()
        let text = String(decoding: report.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        check.waitUntilExit()
        print(text, terminator: "")
        XCTAssertEqual(check.terminationStatus, 0, text)
        for piece in ["missing", "categories", "quantiles", "classes"] {
            XCTAssertTrue(text.contains("\(piece): ok"), "no verdict for \(piece):\n\(text)")
        }
    }
}
