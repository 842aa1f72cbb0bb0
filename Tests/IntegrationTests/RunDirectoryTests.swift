import Foundation
import Support
@testable import Training
import XCTest

/// One writer per run directory (the lock), checkpoints by time, and the restart count in summary.json.
final class RunDirectoryTests: FashionMNISTTestCase {
    func writeConfig(epochs: Int, checkpoint: String) -> String {
        let path = directory + "/config.yaml"
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data("""
            seed: 5
            data: {train: /usr/share/datasets/fashion-mnist/train, train_limit: 6000}
            model: {layers: [{units: 32, activation: relu}, {units: 10}]}
            optimizer: {name: adam, lr: 0.002}
            training: {epochs: \(epochs), batch_size: 50, threads: 1}
            checkpoint: \(checkpoint)
            """.utf8)))
        return path
    }

    /// A second `train` into a directory a running train holds exits 2 at once naming the holder's host and pid,
    /// with or without --resume; `evaluate` still reads it; once the holder is killed, the lock is free again.
    func testSecondTrainStopsAtOnceNamingTheHolder() throws {
        let config = writeConfig(epochs: 400, checkpoint: "{every_steps: 20, keep: 2}")
        let run = directory + "/run"
        let holder = try PlexusProcess.start(PlexusProcess.binary, ["train", config, "--run-dir", run])
        defer { if holder.isRunning { kill(holder.processIdentifier, SIGKILL); holder.waitUntilExit() } }
        let deadline = Date().addingTimeInterval(60)
        while holder.isRunning && Date() < deadline && Checkpoint.checkpointFiles(in: RunDirectory(run)).isEmpty { usleep(10_000) }
        XCTAssertTrue(holder.isRunning, "the first run ended too soon")

        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, 255)
        let expected = "\(run): in use by another plexus train (host \(String(cString: host)), pid \(holder.processIdentifier))"
        for resume in [false, true] {
            let start = Date()
            let second = try PlexusProcess.plexus(["train", config, "--run-dir", run] + (resume ? ["--resume"] : []))
            XCTAssertEqual(second.status, 2, second.standardError)
            XCTAssertTrue(second.standardError.hasPrefix("plexus: " + expected), second.standardError)
            XCTAssertEqual(second.standardError.split(separator: "\n").count, 1, second.standardError)
            XCTAssertLessThan(Date().timeIntervalSince(start), 10, "the second train must stop before loading data")
        }
        let evaluate = try PlexusProcess.plexus(["evaluate", run, "--data", "/usr/share/datasets/fashion-mnist/t10k"])
        XCTAssertEqual(evaluate.status, 0, evaluate.standardError)

        // A killed holder leaves no stale lock; the resumed run clears temporary files a killed writer left.
        kill(holder.processIdentifier, SIGKILL)
        holder.waitUntilExit()
        let leftover = run + "/.metrics.jsonl.tmp-1-2"
        XCTAssertTrue(FileManager.default.createFile(atPath: leftover, contents: Data("torn".utf8)))
        let resumed = try PlexusProcess.plexus(["train", config, "--run-dir", run, "--resume", "--set", "training.epochs=1"])
        XCTAssertEqual(resumed.status, 0, resumed.standardError)
        XCTAssertFalse(FileManager.default.fileExists(atPath: leftover))
    }

    /// A fresh run that fails to start leaves no directory behind (the lock created it).
    func testFailedStartLeavesNoRunDirectory() throws {
        let config = writeConfig(epochs: 1, checkpoint: "{}")
        let run = directory + "/never"
        let result = try PlexusProcess.plexus(["train", config, "--run-dir", run, "--set", "data.train=\(directory)/missing"])
        XCTAssertEqual(result.status, 2, result.standardError)
        XCTAssertFalse(FileManager.default.fileExists(atPath: run))
    }

    /// `checkpoint.every_seconds` at 2 ranks: rank 0's clock decides, every rank agrees at a step boundary; combined
    /// with the epoch setting. The resumed run from a time checkpoint ends bit-identical to the uninterrupted one.
    func testCheckpointsBySecondsAndResume() throws {
        // 0.002 s: the 480 steps of this config take ~25 ms of compute here at 2 ranks, and the clock counts from the
        // end of the last save, so about a dozen time checkpoints fall between the epoch ones.
        let config = writeConfig(epochs: 4, checkpoint: "{every_seconds: 0.002, every_epochs: 2, keep: 1000}")
        let run = directory + "/timed"
        let result = try PlexusProcess.mpirun(ranks: 2, ["train", config, "--run-dir", run])
        XCTAssertEqual(result.status, 0, result.standardError)
        let steps = Checkpoint.checkpointFiles(in: RunDirectory(run)).compactMap { try? Checkpoint.read(path: $0).position.step }
        let stepsPerEpoch = 6000 / 50
        // The epoch setting still saves epochs 2 and 4; the clock saved others in between.
        XCTAssertTrue(steps.contains(2 * stepsPerEpoch) && steps.contains(4 * stepsPerEpoch), "\(steps)")
        let timed = steps.filter { $0 % (2 * stepsPerEpoch) != 0 }
        let seconds = try XCTUnwrap(summary(run)["wall_seconds"] as? Double)
        print("every_seconds 0.002: \(timed.count) time checkpoints in \(seconds) s at steps \(timed)")
        XCTAssertGreaterThanOrEqual(timed.count, 2, "\(steps)")

        // Resume from the first time checkpoint (the later ones removed): the same bits as the whole run.
        let parted = directory + "/parted"
        try FileManager.default.createDirectory(atPath: parted + "/checkpoints", withIntermediateDirectories: true)
        let firstTimed = try XCTUnwrap(timed.first)
        let first = try XCTUnwrap(Checkpoint.checkpointFiles(in: RunDirectory(run)).first { (try? Checkpoint.read(path: $0).position.step) == firstTimed })
        try FileManager.default.copyItem(atPath: first, toPath: parted + "/checkpoints/" + URL(fileURLWithPath: first).lastPathComponent)
        let resumed = try PlexusProcess.mpirun(ranks: 2, ["train", config, "--run-dir", parted, "--resume"])
        XCTAssertEqual(resumed.status, 0, resumed.standardError)
        XCTAssertEqual(try sha(parted), try sha(run))
    }

    /// summary.json counts the restarts launch/supervise logged in RUN_DIR/restarts.jsonl.
    func testSummaryCountsLoggedRestarts() throws {
        let config = writeConfig(epochs: 1, checkpoint: "{}")
        let run = directory + "/restarted"
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
        try Data("{\"restart\": 1}\n{\"restart\": 2}\n".utf8).write(to: URL(fileURLWithPath: run + "/restarts.jsonl"))
        XCTAssertEqual(try PlexusProcess.plexus(["train", config, "--run-dir", run]).status, 0)
        XCTAssertEqual(try summary(run)["restarts"] as? Int, 2)
    }
}
