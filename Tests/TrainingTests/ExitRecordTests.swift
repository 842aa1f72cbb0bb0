@testable import Distributed
import Foundation
@testable import Support
@testable import Training
import XCTest

/// RUN_DIR/exit.json: its claimed space, the record of an error on a world of one, and `plexus files`.
final class ExitRecordTests: TemporaryDirectoryTestCase {
    struct InternalFailure: Error, CustomStringConvertible {
        var description: String { "the step's buffers disagree" }
    }

    /// The parsed exit.json of `files`.
    func recordObject(_ files: RunDirectory) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: files[.exitRecord]))
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: data, options: .fragmentsAllowed) as? [String: Any])
    }

    /// Claiming removes a previous job's record and holds the space; an internal failure on rank 0 of a world of
    /// one is recorded with status 1, cause internal, rank 0 and the line printed; the claimed file becomes exit.json.
    func testClaimThenRecordAnInternalFailure() throws {
        let files = RunDirectory(directory + "/run")
        try files.create()
        _ = try write(#"{"status": 0, "cause": "completed"}"#, "run/exit.json")
        let recorder = ExitRecorder()
        try recorder.claim(files)
        XCTAssertFalse(FileManager.default.fileExists(atPath: files[.exitRecord]), "the previous job's record is gone")
        let claimed = try FileManager.default.attributesOfItem(atPath: files.claimedExitRecord)[.size] as? Int
        XCTAssertEqual(claimed, ClaimedExitRecord.claimedBytes)

        let communicator = InProcessCommunicator()
        communicator.activity = .step(17)
        recorder.write(status: exitStatus(of: InternalFailure()), error: InternalFailure(), communicator: communicator)
        let record = try recordObject(files)
        XCTAssertEqual(record["status"] as? Int, 1)
        XCTAssertEqual(record["cause"] as? String, "internal")
        XCTAssertEqual(record["rank"] as? Int, 0)
        XCTAssertEqual(record["step"] as? Int, 17)
        XCTAssertEqual(record["message"] as? String, errorLine(for: InternalFailure(), rank: 0, worldSize: 1))
        XCTAssertEqual(record["message"] as? String, "plexus: error: the step's buffers disagree")
        XCTAssertFalse(FileManager.default.fileExists(atPath: files.claimedExitRecord))
        XCTAssertEqual(try ExitRecord.read(files).cause, .internal)

        // Written once: a later call (another exit path) leaves the record as it is.
        recorder.write(status: 0, error: nil, communicator: communicator)
        XCTAssertEqual(try ExitRecord.read(files).cause, .internal)
    }

    /// A stall names the stalled rank; a rank that finds every other one arrived was the stopped one itself (resumed
    /// once the others gave up) and names itself.
    func testStallRecords() throws {
        let communicator = InProcessCommunicator()
        communicator.activity = .step(45)
        let recorder = ExitRecorder()
        let other = CollectiveStalled(ranks: [2], activity: .step(45), timeoutSeconds: 3)
        XCTAssertEqual(recorder.record(status: 1, error: other, communicator: communicator),
                       ExitRecord(status: 1, cause: .stalled, rank: 2, step: 45,
                                  message: "plexus: rank 2 stalled at step 45: no progress for 3 s; stopping the job"))
        let itself = CollectiveStalled(ranks: [], activity: .step(45), timeoutSeconds: 3)
        XCTAssertEqual(errorLine(for: itself, rank: 0, worldSize: 3),
                       "plexus: rank 0: stalled at step 45 itself: no progress for 3 s; stopping the job")
        XCTAssertEqual(errorLine(for: other, rank: 0, worldSize: 3),
                       "plexus: rank 2 stalled at step 45: no progress for 3 s; stopping the job")
        XCTAssertEqual(recorder.record(status: 1, error: itself, communicator: communicator).rank, 0)
        XCTAssertEqual(errorLine(for: AgreedUserError("ranks disagree"), rank: 1, worldSize: 3), "plexus: ranks disagree")
    }

    /// A completed job records its last line and step count; unknown rank and step are null, not missing.
    func testCompletedRecordHasEveryKey() throws {
        let files = RunDirectory(directory)
        let recorder = ExitRecorder()
        try recorder.claim(files)
        recorder.finished(steps: 40, line: "plexus: done: 40 steps")
        recorder.write(status: 0, error: nil, communicator: InProcessCommunicator())
        let record = try recordObject(files)
        XCTAssertEqual(Set(record.keys), ["status", "cause", "rank", "step", "message"])
        XCTAssertTrue(record["rank"] is NSNull)
        XCTAssertEqual(record["step"] as? Int, 40)
        XCTAssertEqual(record["cause"] as? String, "completed")
        XCTAssertEqual(record["message"] as? String, "plexus: done: 40 steps")
    }

    /// A message too long for the claimed space is shortened so the record still fits.
    func testLongMessageIsShortenedToFit() throws {
        let long = ExitRecord(status: 2, cause: .userError, rank: 0, step: nil, message: String(repeating: "é", count: 40_000))
        let fitted = ClaimedExitRecord.fitting(long)
        XCTAssertLessThan(JSON.text(fitted).utf8.count, ClaimedExitRecord.claimedBytes)
        XCTAssertTrue(fitted.message.hasSuffix("…"))
        XCTAssertTrue(long.message.hasPrefix(fitted.message.dropLast()))
        let short = ExitRecord(status: 3, cause: .diverged, rank: nil, step: 5, message: "plexus: diverged")
        XCTAssertEqual(ClaimedExitRecord.fitting(short), short)
    }

    /// On a file system with no byte left, an ordinary write fails with disk_full while the claimed record is still
    /// written (a small tmpfs, so root only).
    func testClaimedRecordIsWrittenOnAFullDisk() throws {
        guard getuid() == 0 else { throw XCTSkip("mounting a small tmpfs to fill needs root") }
        let mountPoint = directory + "/small"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        guard run("/bin/mount", ["-t", "tmpfs", "-o", "size=128k", "tmpfs", mountPoint]) == 0 else {
            return XCTFail("cannot mount a tmpfs at \(mountPoint)")
        }
        defer { _ = run("/bin/umount", [mountPoint]) }
        let files = RunDirectory(mountPoint + "/run")
        try files.create()
        let claimed = try ClaimedExitRecord(files)

        // Fill every byte that is left.
        let filler = open(mountPoint + "/filler", O_WRONLY | O_CREAT, 0o644)
        XCTAssertGreaterThanOrEqual(filler, 0)
        let block = [UInt8](repeating: 1, count: 4096)
        while block.withUnsafeBytes({ Glibc.write(filler, $0.baseAddress, $0.count) }) > 0 {}
        XCTAssertEqual(errno, ENOSPC)
        while block.withUnsafeBytes({ Glibc.write(filler, $0.baseAddress, 1) }) > 0 {}
        close(filler)

        let record = ExitRecord(status: 2, cause: .diskFull, rank: 0, step: 12,
                                message: "plexus: \(files[.checkpoints])/x: cannot write: No space left on device")
        XCTAssertThrowsError(try FileIO.writeAtomically(JSON.text(record), to: files[.summary])) { error in
            XCTAssertEqual(exitCause(of: error), .diskFull, "\(error)")
        }
        try claimed.write(record)
        XCTAssertEqual(try ExitRecord.read(files), record)
    }

    /// `plexus files`: every run file once under its own key, the checkpoint pattern, the default run directories,
    /// the exit record's fields, and one line naming what to give when the directory is missing or given twice.
    func testFilesCommand() throws {
        let listing = try Commands.files(runDirectory: directory, defaultFor: nil, named: nil)
        let lines = listing.split(separator: "\n").map { ($0.split(separator: "=", maxSplits: 1).map(String.init)) }
        XCTAssertEqual(lines.first, ["run_dir", directory])
        XCTAssertEqual(Set(lines.map { $0[0] }).count, lines.count, "keys are unique")
        for file in RunFile.allCases {
            XCTAssertTrue(lines.contains([file.key, RunDirectory(directory)[file]]), "\(file) missing in \(listing)")
        }
        XCTAssertTrue(lines.contains(["exit_record", directory + "/exit.json"]))
        XCTAssertTrue(lines.contains(["checkpoint_pattern", directory + "/checkpoints/step-*.safetensors"]))
        XCTAssertTrue(RunDirectory.isCheckpointName((RunDirectory(directory).checkpoint(step: 7) as NSString).lastPathComponent))

        let fresh = try Commands.files(runDirectory: nil, defaultFor: "/x/Configs/tiny.yaml", named: nil)
        XCTAssertTrue(fresh.hasPrefix("run_dir=runs/tiny-"), fresh)
        XCTAssertTrue(try Commands.files(runDirectory: nil, defaultFor: nil, named: "slurm-42").hasPrefix("run_dir=runs/slurm-42\n"))
        let created = directory + "/made/here"
        _ = try Commands.files(runDirectory: created, defaultFor: nil, named: nil, create: true)
        XCTAssertTrue(FileManager.default.fileExists(atPath: created))

        XCTAssertEqual(errorMessage { try Commands.files(runDirectory: nil, defaultFor: nil, named: nil) },
                       "files: give one of RUN_DIR, --default-run-dir CONFIG or --run-name NAME")
        XCTAssertEqual(errorMessage { try Commands.files(runDirectory: directory, defaultFor: nil, named: "a") },
                       "files: give one of RUN_DIR, --default-run-dir CONFIG or --run-name NAME")
        XCTAssertEqual(errorMessage { try Commands.files(runDirectory: directory, defaultFor: nil, named: nil, exitRecord: true) },
                       "\(directory)/exit.json: no such file")

        let recorder = ExitRecorder()
        try recorder.claim(RunDirectory(directory))
        let communicator = InProcessCommunicator()
        communicator.activity = .step(3)
        let stop = AgreedUserError("line one\nline two")
        recorder.write(status: stop.exitStatus, error: stop, communicator: communicator)
        XCTAssertEqual(try Commands.files(runDirectory: directory, defaultFor: nil, named: nil, exitRecord: true),
                       "status=2\ncause=user_error\nrank=\nstep=3\nmessage=plexus: line one\\nline two")
        _ = try write("not json", "exit.json")
        XCTAssertTrue(errorMessage { try Commands.files(runDirectory: directory, defaultFor: nil, named: nil, exitRecord: true) }
            .hasPrefix("\(directory)/exit.json: not an exit record"))
    }

    /// Runs a system tool, returning its exit status.
    func run(_ tool: String, _ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        guard (try? process.run()) != nil else { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }
}
