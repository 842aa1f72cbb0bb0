@testable import Formats
import Foundation
@testable import Observe
@testable import Support
@testable import Training
import XCTest

/// What `plexus train` writes for watching a run (event file, timeline, curves.svg) and `plexus plot`, through the
/// binary on a small CSV problem (the 2-rank and TensorBoard checks are in Tests/scripts/tensorboard_timeline.sh).
final class ObserveTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws { directory = try PlexusProcess.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    /// Trains 5 epochs of 25 steps on two blobs with every observing option on; returns the run directory.
    private func trainSmallRun() throws -> String {
        let data = directory + "/blobs.csv", config = directory + "/config.yaml", run = directory + "/run"
        let rows = (0..<400).map { index -> String in
            let center = index % 2 == 0 ? -1.0 : 1.0
            return "\(center + Double(index % 7) * 0.1),\(-center + Double(index % 5) * 0.1),\(index % 2)"
        }
        try (["a,b,label"] + rows).joined(separator: "\n").write(toFile: data, atomically: true, encoding: .utf8)
        try """
            data: {train: \(data), test: \(data)}
            model: {layers: [{units: 8, activation: tanh}, {units: 2}]}
            optimizer: {name: sgd, lr: 0.1}
            training: {epochs: 5, batch_size: 16, threads: 1}
            logging: {every_steps: 5, timeline: true, timeline_steps: 1-10, histogram_every_steps: 25}
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let result = try PlexusProcess.plexus(["train", config, "--run-dir", run, "--progress", "plain"])
        XCTAssertEqual(result.status, 0, result.standardError)
        return run
    }

    func testTrainWritesEventsTimelineAndCurves() throws {
        let run = try trainSmallRun()
        let files = EventFileWriter.files(in: run)
        XCTAssertEqual(files.count, 1)
        let (records, intact) = TFRecord.records(in: try FileIO.readBytes(path: try XCTUnwrap(files.first)))
        XCTAssertTrue(intact)
        var steps: [String: [Int]] = [:]
        for record in records {
            let event = try XCTUnwrap(EventSummary(record))
            for tag in event.tags { steps[tag, default: []].append(event.step) }
        }
        XCTAssertEqual(steps["train/loss"], Array(stride(from: 5, through: 125, by: 5)))
        XCTAssertEqual(steps["train/lr"], steps["train/loss"])
        XCTAssertEqual(steps["test/loss"], [25, 50, 75, 100, 125])
        XCTAssertEqual(steps["test/accuracy"], [25, 50, 75, 100, 125])
        XCTAssertEqual(steps["config"], [0])
        XCTAssertEqual(steps["weights/layers.1.bias"], [25, 50, 75, 100, 125])
        XCTAssertEqual(steps["gradients/layers.0.weight"], [25, 50, 75, 100, 125])

        let trace = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run + "/timeline.json")))
            as? [String: Any])
        let spans = try XCTUnwrap(trace["traceEvents"] as? [[String: Any]]).filter { $0["ph"] as? String == "X" }
        let stepSpans = spans.filter { $0["cat"] as? String == "step" }
        XCTAssertEqual(Set(stepSpans.compactMap { ($0["args"] as? [String: Any])?["step"] as? Int }), Set(1...10))
        XCTAssertEqual(Set(stepSpans.compactMap { $0["name"] as? String }), ["data", "forward", "backward", "reduce", "optimizer"])
        XCTAssertEqual(spans.filter { $0["name"] as? String == "evaluation" }.count, 5)
        XCTAssertGreaterThanOrEqual(spans.filter { $0["name"] as? String == "checkpoint" }.count, 5)
        XCTAssertTrue(spans.allSatisfy { $0["pid"] as? Int == 0 && ($0["dur"] as? Double ?? -1) >= 0 })

        let curves = try String(contentsOfFile: run + "/curves.svg", encoding: .utf8)
        XCTAssertTrue(curves.contains(">run</text>") && curves.contains("<polyline"))
    }

    func testPlotCommand() throws {
        let run = try trainSmallRun()
        let output = directory + "/both.svg"
        let plot = try PlexusProcess.plexus(["plot", run, run, "--output", output, "--metric", "test_accuracy", "--metric", "lr"])
        XCTAssertEqual(plot.status, 0, plot.standardError)
        XCTAssertEqual(plot.standardOutput, "wrote \(output): test_accuracy, lr of 2 runs\n")
        let svg = try String(contentsOfFile: output, encoding: .utf8)
        XCTAssertTrue(svg.contains("accuracy (%)") && svg.contains("learning rate"))
        XCTAssertTrue(svg.contains(">\(run)</text>"), "two runs of the same name are told apart by their paths")

        let unknown = try PlexusProcess.plexus(["plot", run, "--metric", "val_loss", "--output", output])
        XCTAssertEqual(unknown.status, 2)
        XCTAssertTrue(unknown.standardError.hasPrefix("plexus: --metric val_loss: not in any run's metrics.jsonl"), unknown.standardError)
        XCTAssertEqual(unknown.standardError.split(separator: "\n").count, 1)
        let missing = try PlexusProcess.plexus(["plot", directory])
        XCTAssertEqual(missing.status, 2)
        XCTAssertEqual(missing.standardError, "plexus: \(directory)/metrics.jsonl: no such file (no metrics in this run directory)\n")
    }
}
