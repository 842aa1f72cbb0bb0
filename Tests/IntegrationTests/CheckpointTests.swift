import Foundation
import Support
@testable import Training
import XCTest

/// Checkpoints, exact resume, preemption by signal, a killed rank, divergence, and an unwritable run directory.
final class CheckpointTests: FashionMNISTTestCase {
    /// A config small enough to run in seconds, long enough (many steps) for a signal to land mid-run.
    func writeConfig(epochs: Int = 4, extra: String = "") -> String {
        let path = directory + "/config.yaml"
        _ = FileManager.default.createFile(atPath: path, contents: Data("""
            seed: 11
            data: {train: /usr/share/datasets/fashion-mnist/train, test: /usr/share/datasets/fashion-mnist/t10k, train_limit: 20000}
            model: {layers: [{units: 48, activation: relu}, {units: 10}]}
            optimizer: {name: adamw, lr: 0.002}
            schedule: {name: cosine, warmup_steps: 30}
            training: {epochs: \(epochs), batch_size: 50, threads: 1}
            checkpoint: {every_steps: 25, keep: 2}
            \(extra)
            """.utf8))
        return path
    }

    /// Starts `arguments` (plexus or mpirun), waits for the first checkpoint, sends `signal`, and waits for the exit.
    func runAndSignal(_ executable: String, _ arguments: [String], run: String, signal: Int32) throws -> Int32 {
        let process = try PlexusProcess.start(executable, arguments)
        let deadline = Date().addingTimeInterval(60)
        while process.isRunning && Date() < deadline && Checkpoint.checkpointFiles(in: RunDirectory(run)).isEmpty { usleep(10_000) }
        XCTAssertTrue(process.isRunning, "the run ended before the signal could be sent; make it longer")
        kill(process.processIdentifier, signal)
        XCTAssertTrue(PlexusProcess.wait(for: process, seconds: 30), "did not stop within 30 s of the signal")
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Two simulated nodes synchronizing every 16 steps: SIGUSR1 sent to rank 1 alone, after the first checkpoint
    /// (step 100), is acted on at a round: every rank stops with status 75 and the checkpoint is of a round's step.
    func testPeriodicSyncStopOnOneRankWaitsForTheRound() throws {
        let config = writeConfig(extra: "distributed: {shared_memory: false, sync_every: 16}")
        let run = directory + "/periodic-stop"
        let process = try PlexusProcess.start("/usr/bin/mpirun", ["-np", "2", "--oversubscribe", PlexusProcess.binary, "train", config,
                                                                  "--run-dir", run, "--set", "checkpoint.every_steps=100"])
        let deadline = Date().addingTimeInterval(60)
        while process.isRunning && Date() < deadline && Checkpoint.checkpointFiles(in: RunDirectory(run)).isEmpty { usleep(10_000) }
        XCTAssertTrue(process.isRunning, "the run ended before the signal could be sent; make it longer")
        let rankOne = try XCTUnwrap(Self.process(ofRank: 1, running: run), "rank 1's process")
        kill(rankOne, SIGUSR1)
        XCTAssertTrue(PlexusProcess.wait(for: process, seconds: 30), "did not stop within 30 s of the signal")
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 75, "every rank stops with a checkpoint")
        let newest = try XCTUnwrap(Checkpoint.newestValid(in: RunDirectory(run)).loaded)
        XCTAssertGreaterThan(newest.position.step, 100)
        XCTAssertTrue(newest.position.step % 16 == 0 || newest.position.step % 100 == 0,
                      "stopped after step \(newest.position.step), not at a round")
    }

    /// The process of MPI rank `rank` whose command line names `run`.
    static func process(ofRank rank: Int, running run: String) -> Int32? {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).first { pid in
            guard let line = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"),
                  String(decoding: line, as: UTF8.self).contains(run), !String(decoding: line, as: UTF8.self).contains("mpirun"),
                  let environment = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return false }
            return environment.split(separator: 0).contains { String(decoding: $0, as: UTF8.self) == "OMPI_COMM_WORLD_RANK=\(rank)" }
        }
    }

    /// Uninterrupted vs. stopped by SIGUSR1/SIGTERM and resumed: the same param_sha256, at 1 and at 2 ranks.
    func testSignalStopThenResumeIsBitIdentical() throws {
        let config = writeConfig()
        for (ranks, signal) in [(1, SIGTERM), (2, SIGUSR1)] {
            let whole = directory + "/whole\(ranks)", parted = directory + "/parted\(ranks)"
            let prefix: [String] = ranks == 1 ? [] : ["-np", "\(ranks)", "--oversubscribe", PlexusProcess.binary]
            let executable = ranks == 1 ? PlexusProcess.binary : "/usr/bin/mpirun"
            let uninterrupted = try PlexusProcess.run(executable, prefix + ["train", config, "--run-dir", whole])
            XCTAssertEqual(uninterrupted.status, 0, uninterrupted.standardError)

            let stopped = try runAndSignal(executable, prefix + ["train", config, "--run-dir", parted], run: parted, signal: signal)
            XCTAssertEqual(stopped, 75, "a signal stops with status 75 after saving a checkpoint (ranks \(ranks))")
            XCTAssertFalse(FileManager.default.fileExists(atPath: parted + "/summary.json"))
            let newest = try XCTUnwrap(Checkpoint.newestValid(in: RunDirectory(parted)).loaded)
            XCTAssertGreaterThan(newest.position.step, 0)

            let resumed = try PlexusProcess.run(executable, prefix + ["train", config, "--run-dir", parted, "--resume"])
            XCTAssertEqual(resumed.status, 0, resumed.standardError)
            XCTAssertTrue(resumed.standardOutput.contains("resuming from"), resumed.standardOutput)
            XCTAssertEqual(try sha(parted), try sha(whole), "ranks \(ranks): resumed run differs from uninterrupted")
            XCTAssertLessThanOrEqual(Checkpoint.checkpointFiles(in: RunDirectory(parted)).count, 2, "checkpoint.keep")
        }
    }

    /// `--resume` with nothing to resume is a user error; a torn newest checkpoint is skipped for the previous one.
    func testResumeNeedsAValidCheckpointAndSkipsCorruptOnes() throws {
        let config = writeConfig(epochs: 1)
        let empty = try PlexusProcess.plexus(["train", config, "--run-dir", directory + "/empty", "--resume"])
        XCTAssertEqual(empty.status, 2)
        XCTAssertTrue(empty.standardError.contains("nothing to resume"), empty.standardError)

        let run = directory + "/run"
        XCTAssertEqual(try PlexusProcess.plexus(["train", config, "--run-dir", run]).status, 0)
        let files = Checkpoint.checkpointFiles(in: RunDirectory(run))
        XCTAssertEqual(files.count, 2)
        // A checkpoint whose optimizer state does not fit the config's optimizer is a user error.
        let mismatch = try PlexusProcess.plexus(["train", config, "--run-dir", run, "--resume", "--set", "optimizer={name: sgd, lr: 0.1}"])
        XCTAssertEqual(mismatch.status, 2, mismatch.standardError)
        XCTAssertTrue(mismatch.standardError.contains("does not fit optimizer.name sgd"), mismatch.standardError)
        // Tear the newest as a crash mid-write of a non-atomic writer would: evaluate and resume fall back.
        let newest = files.last!
        let bytes = try Data(contentsOf: URL(fileURLWithPath: newest))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: newest))
        XCTAssertNil(try? Checkpoint.read(path: newest))
        let evaluate = try PlexusProcess.plexus(["evaluate", run])
        XCTAssertEqual(evaluate.status, 0, evaluate.standardError)
        XCTAssertTrue(evaluate.standardOutput.contains(URL(fileURLWithPath: files.first!).lastPathComponent), evaluate.standardOutput)
        // A flipped byte in the tensor data is caught by the checksum.
        var flipped = try Data(contentsOf: URL(fileURLWithPath: files.first!))
        flipped[flipped.count - 3] ^= 0x40
        try flipped.write(to: URL(fileURLWithPath: directory + "/flipped.safetensors"))
        XCTAssertThrowsError(try Checkpoint.read(path: directory + "/flipped.safetensors")) { error in
            XCTAssertTrue(String(describing: error).contains("checksum"), "\(error)")
        }
    }

    /// A NaN/inf loss stops training naming the step, with status 3, and keeps the last good checkpoint.
    func testNonFiniteLossStopsAndKeepsLastGoodCheckpoint() throws {
        let config = writeConfig(epochs: 1, extra: "")
        let run = directory + "/diverge"
        let result = try PlexusProcess.plexus(["train", config, "--run-dir", run, "--set", "optimizer={name: sgd, lr: 1.0e+30}",
                                               "--set", "checkpoint.every_steps=1"])
        XCTAssertEqual(result.status, 3, result.standardError)
        XCTAssertTrue(result.standardError.contains("non-finite"), result.standardError)
        let step = try XCTUnwrap(result.standardError.range(of: #"at step \d+"#, options: .regularExpression)
            .map { Int(result.standardError[$0].dropFirst(8))! })
        let newest = try XCTUnwrap(Checkpoint.newestValid(in: RunDirectory(run)).loaded)
        XCTAssertEqual(newest.position.step, step - 1, "the newest checkpoint is the one before the bad step")
        XCTAssertTrue(newest.tensors.allSatisfy { $0.values.allSatisfy(\.isFinite) })
    }

    /// An unwritable run directory is a clear user error; a full disk mid-run keeps the previous checkpoint.
    func testUnwritableRunDirectoryAndFullDisk() throws {
        let config = writeConfig(epochs: 1)
        _ = FileManager.default.createFile(atPath: directory + "/afile", contents: Data("x".utf8))
        let unwritable = try PlexusProcess.plexus(["train", config, "--run-dir", directory + "/afile/run"])
        XCTAssertEqual(unwritable.status, 2, unwritable.standardError)
        XCTAssertTrue(unwritable.standardError.contains(directory + "/afile/run"), unwritable.standardError)
        XCTAssertEqual(unwritable.standardError.split(separator: "\n").count, 1, unwritable.standardError)

        guard getuid() == 0 else { throw XCTSkip("mounting a small tmpfs to fill the disk needs root") }
        let mountPoint = directory + "/small"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        let mount = try PlexusProcess.run("/bin/mount", ["-t", "tmpfs", "-o", "size=400k", "tmpfs", mountPoint])
        XCTAssertEqual(mount.status, 0, mount.standardError)
        defer { _ = try? PlexusProcess.run("/bin/umount", [mountPoint]) }
        // Each checkpoint of this net (weights + two Adam moments) is ~115 KB: a few fit in 400 KB, then one does not.
        let result = try PlexusProcess.plexus(["train", config, "--run-dir", mountPoint + "/run",
                                               "--set", "model.layers=[{units: 12, activation: relu}, {units: 10}]",
                                               "--set", "checkpoint={every_steps: 10, keep: 5}"])
        XCTAssertEqual(result.status, 2, result.standardError)
        XCTAssertTrue(result.standardError.contains("No space left on device") || result.standardError.contains("space"),
                      result.standardError)
        let newest = try XCTUnwrap(Checkpoint.newestValid(in: RunDirectory(mountPoint + "/run")).loaded, "the previous checkpoint survives")
        XCTAssertGreaterThan(newest.position.step, 0)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: RunDirectory(mountPoint + "/run")[.checkpoints])
        XCTAssertTrue(leftovers.allSatisfy { $0.hasPrefix("step-") && $0.hasSuffix(".safetensors") }, "no temporary files: \(leftovers)")
    }

    /// SIGKILL of one rank ends the whole job within seconds, non-zero, with no process left behind.
    func testKilledRankEndsTheJob() throws {
        let config = writeConfig(epochs: 20)
        let run = directory + "/killed"
        let process = try PlexusProcess.start("/usr/bin/mpirun", ["-np", "2", "--oversubscribe", PlexusProcess.binary, "train",
                                                                  config, "--run-dir", run])
        let deadline = Date().addingTimeInterval(60)
        while process.isRunning && Date() < deadline && Checkpoint.checkpointFiles(in: RunDirectory(run)).isEmpty { usleep(10_000) }
        let ranks = rankProcesses(run)
        XCTAssertEqual(ranks.count, 2, "both ranks running")
        kill(ranks.last!, SIGKILL)
        XCTAssertTrue(PlexusProcess.wait(for: process, seconds: 20), "mpirun still running 20 s after a rank was killed")
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        XCTAssertNotEqual(process.terminationStatus, 0)
        usleep(500_000)
        XCTAssertEqual(rankProcesses(run), [], "a rank was left behind")
    }

    /// PIDs of plexus processes training into `run` (from /proc/*/cmdline).
    func rankProcesses(_ run: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            let arguments = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            return arguments.first?.hasSuffix("plexus") == true && arguments.contains(run)
        }.sorted()
    }
}
