@testable import Config
@testable import DataParallel
import Distributed
import Foundation
@testable import Observe
@testable import Support
#if canImport(FoundationXML)
import FoundationXML
#endif
@testable import Training
import XCTest

/// The timeline recorder's window, the wait derived from aligned clocks, the logging keys, and the plot.
final class TimelineAndPlotTests: TemporaryDirectoryTestCase {
    /// Counts the calls it hears, to check the recorder passes every phase on.
    final class CountingObserver: StepObserver {
        var phases: [StepPhase] = []
        var steps = 0
        func begin(_ phase: StepPhase) throws { phases.append(phase) }
        func endStep(samples: Int) throws { steps += 1 }
    }

    func testRecorderKeepsOnlyTheWindowAndForwards() throws {
        let next = CountingObserver()
        let recorder = TimelineRecorder(window: 2...3, firstStep: 1, next: next)
        for _ in 1...4 {
            for phase in [StepPhase.data, .forward, .reduce] { try recorder.begin(phase) }
            try recorder.endStep(samples: 8)
        }
        recorder.record(.evaluation, step: 4, start: 10, end: 20)
        let spans = recorder.recorded
        XCTAssertEqual(spans.map(\.step), [2, 2, 2, 3, 3, 3, 4])
        XCTAssertEqual(spans.map(\.kind), [.data, .forward, .reduce, .data, .forward, .reduce, .evaluation])
        for (span, following) in zip(spans.prefix(5), spans.dropFirst().prefix(5)) where span.step == following.step {
            XCTAssertEqual(span.end, following.start, "phases of a step follow each other")
        }
        XCTAssertTrue(spans.allSatisfy { $0.end >= $0.start })
        XCTAssertEqual(next.phases.count, 12)
        XCTAssertEqual(next.steps, 4)
        XCTAssertEqual(recorder.step, 5)
    }

    func testWaitIsTheLatestArrivalMinusEachRanks() throws {
        let ranks: [[TimelineSpan]] = [
            [TimelineSpan(kind: .backward, step: 7, start: 0, end: 100_000), TimelineSpan(kind: .reduce, step: 7, start: 100_000, end: 300_000)],
            [TimelineSpan(kind: .backward, step: 7, start: 0, end: 180_000), TimelineSpan(kind: .reduce, step: 7, start: 180_000, end: 301_000)],
        ]
        let spans = TimelineTrace.events(ranks).filter { $0.ph == "X" }
        let rank0 = spans.filter { $0.pid == 0 }, rank1 = spans.filter { $0.pid == 1 }
        XCTAssertEqual(rank0.map(\.name), ["backward", "wait", "reduce"])
        XCTAssertEqual(rank0[1].ts, 100)
        XCTAssertEqual(rank0[1].dur, 80, "rank 0 waits from its arrival (100 µs) until rank 1's (180 µs)")
        XCTAssertEqual(rank0[1].args["waiting_for_rank"], .integer(1))
        XCTAssertEqual(rank0[2].ts, 180)
        XCTAssertEqual(rank0[2].dur, 120)
        XCTAssertEqual(rank1.map(\.name), ["backward", "reduce"], "the last rank to arrive does not wait")
        XCTAssertTrue(spans.allSatisfy { $0.args["step"] == .integer(7) })
        // One rank alone never waits.
        XCTAssertFalse(TimelineTrace.events([ranks[0]]).contains { $0.name == "wait" })
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(TimelineTrace.json(ranks, dropped: 0).utf8)) as? [String: Any])
        XCTAssertEqual((json["traceEvents"] as? [Any])?.count, 4 + 5)
    }

    func testGatherOnOneRankUsesTheAlignment() throws {
        let communicator = InProcessCommunicator()
        let alignment = try ClockAlignment.measure(communicator)
        let now = TimelineRecorder.now()
        XCTAssertLessThanOrEqual(alignment.shift, now, "alone, the shift is this rank's origin")
        let spans = [TimelineSpan(kind: .forward, step: 1, start: alignment.shift + 5, end: alignment.shift + 9)]
        XCTAssertEqual(try TimelineTrace.gather(spans, alignment: alignment, communicator: communicator),
                       [[TimelineSpan(kind: .forward, step: 1, start: 5, end: 9)]])
    }

    func testLoggingKeys() throws {
        let minimal = "data: {train: /d/train}\nmodel: {layers: [{units: 10}]}\n"
        let defaults = try TrainingConfig.parse(minimal, source: "c.yaml")
        XCTAssertFalse(defaults.logging.timeline)
        XCTAssertEqual(defaults.logging.timelineSteps, 21...220)
        XCTAssertNil(defaults.logging.histogramEverySteps)
        let set = try TrainingConfig.parse(minimal, source: "c.yaml", overrides: [
            "logging.timeline=true", "logging.timeline_steps=5-9", "logging.histogram_every_steps=50"])
        XCTAssertEqual(set.logging.timelineSteps, 5...9)
        XCTAssertEqual(set.logging.histogramEverySteps, 50)
        XCTAssertEqual(try TrainingConfig.parse(set.yaml, source: "resolved.yaml"), set)
        for (value, fragment) in [("9-5", "FIRST-LAST"), ("abc", "FIRST-LAST"), ("0-3", "FIRST-LAST"), ("1-200000", "at most")] {
            XCTAssertThrowsError(try TrainingConfig.parse(minimal, source: "c.yaml", overrides: ["logging.timeline_steps=\(value)"])) {
                let message = ($0 as? UserError)?.message ?? ""
                XCTAssertTrue(message.contains("logging.timeline_steps") && message.contains(fragment), message)
            }
        }
        XCTAssertThrowsError(try TrainingConfig.parse(minimal + "logging: {histogram_every_steps: 0}\n", source: "c.yaml"))
    }

    func testTicksAreRoundAndCoverTheData() {
        let y = CurvePlot.ticks(from: 0.31, to: 0.97, integers: false)
        XCTAssertEqual(y.step, 0.2, accuracy: 1e-12)
        XCTAssertLessThanOrEqual(y.low, 0.31)
        XCTAssertGreaterThanOrEqual(y.high, 0.97)
        XCTAssertEqual(y.values.map { CurvePlot.tickLabel($0, step: y.step) }, ["0.2", "0.4", "0.6", "0.8", "1.0"])
        let x = CurvePlot.ticks(from: 1, to: 3, integers: true)
        XCTAssertEqual(x.values, [1, 2, 3])
        XCTAssertEqual(CurvePlot.ticks(from: 5, to: 5, integers: true).values, [4, 5, 6], "one epoch still gets an axis")
        XCTAssertEqual(CurvePlot.tickLabel(-0.0001, step: 0.1), "0.0")
        XCTAssertEqual(CurvePlot.tickLabel(60_000, step: 10_000), "60000")
    }

    private func writeRun(_ name: String, _ lines: [String]) throws -> String {
        let run = directory + "/" + name
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
        try lines.map { $0 + "\n" }.joined().write(toFile: run + "/metrics.jsonl", atomically: true, encoding: .utf8)
        return run
    }

    func testPlotDrawsEveryRunAndMetric() throws {
        let a = try writeRun("a<&>", [
            #"{"epoch":1,"step":10,"lr":0.1,"train_loss":1.5,"test_loss":1.2,"test_accuracy":0.6,"samples_per_second":100,"elapsed_seconds":1}"#,
            #"{"epoch":2,"step":20,"lr":0.1,"train_loss":0.9,"test_loss":0.8,"test_accuracy":0.7,"samples_per_second":100,"elapsed_seconds":2}"#,
        ])
        let b = try writeRun("b", [#"{"epoch":1,"step":5,"train_loss":2.0,"test_loss":"NaN","val_r2":0.5,"stopped":true}"#])
        let curves = try RunCurves.read(RunDirectory(a))
        XCTAssertEqual(curves.defaultMetrics, ["train_loss", "test_loss", "test_accuracy"])
        XCTAssertEqual(try RunCurves.read(RunDirectory(b)).keys, ["epoch", "step", "train_loss", "val_r2"], "no NaN, no flags")
        let svg = CurvePlot.svg(runs: [curves, try RunCurves.read(RunDirectory(b))],
                                metrics: ["train_loss", "test_loss", "test_accuracy", "val_r2"])
        XCTAssertTrue(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        XCTAssertTrue(svg.contains(">a&lt;&amp;&gt;</text>"), "run names are escaped")
        XCTAssertFalse(svg.contains("<&>"))
        for colour in CurvePlot.colours.prefix(2) { XCTAssertTrue(svg.contains("stroke=\"\(colour)\"")) }
        for label in ["loss (mean per sample)", "accuracy (%)", "r2", ">epoch<", ">70<"] { XCTAssertTrue(svg.contains(label), label) }
        XCTAssertEqual(svg.components(separatedBy: "<polyline").count - 1, 3, "train and test loss and accuracy of run a")
        // Well-formed XML.
        XCTAssertNoThrow(try XMLDocument(data: Data(svg.utf8)))
    }

    func testPlotCommandErrorsNameThePathOrMetric() throws {
        let good = try writeRun("good", [#"{"epoch":1,"step":1,"train_loss":1}"#])
        let bad = try writeRun("bad", [#"{"epoch":1,"step":1,"train_loss":1}"#, "{not json"])
        let empty = try writeRun("empty", [])
        /// The command's error message, or its report when it succeeds.
        func message(_ runs: [String], metrics: [String] = []) -> String {
            do {
                return try Commands.plot(runDirectories: runs, output: directory + "/out.svg", metrics: metrics)
            } catch {
                return (error as? UserError)?.message ?? "\(error)"
            }
        }
        XCTAssertEqual(message([directory + "/nope"]), "\(directory)/nope: no such run directory")
        XCTAssertEqual(message([directory]), "\(directory)/metrics.jsonl: no such file (no metrics in this run directory)")
        XCTAssertEqual(message([good, bad]), "\(bad)/metrics.jsonl:2: not a metrics line (a JSON object with an epoch)")
        XCTAssertEqual(message([empty]), "\(empty)/metrics.jsonl: no epochs recorded yet")
        XCTAssertTrue(message([good], metrics: ["test_rmse"]).hasPrefix("--metric test_rmse: not in any run's metrics.jsonl"))
        XCTAssertEqual(message([good], metrics: ["train_loss"]), "wrote \(directory)/out.svg: train_loss of 1 run")
        XCTAssertTrue(FileManager.default.fileExists(atPath: directory + "/out.svg"))
    }
}
