import Foundation
import Support
@testable import Training
import XCTest

/// RUN_DIR/exit.json as real jobs leave it: another rank's mistake recorded by rank 0, a disk that fills up mid-run,
/// and a killed rank (no rank can write it; a previous job's record must not stay).
final class JobEndTests: FashionMNISTTestCase {
    func writeConfig(epochs: Int) -> String {
        let path = directory + "/config.yaml"
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data("""
            seed: 5
            data: {train: /usr/share/datasets/fashion-mnist/train, train_limit: 2000}
            model: {layers: [{units: 12, activation: relu}, {units: 10}]}
            optimizer: {name: adam, lr: 0.002}
            training: {epochs: \(epochs), batch_size: 50, threads: 1}
            checkpoint: {every_steps: 10, keep: 3}
            """.utf8)))
        return path
    }

    /// The record in `run`, or nil when there is no exit.json.
    func record(_ run: String) throws -> ExitRecord? {
        guard FileManager.default.fileExists(atPath: RunDirectory(run)[.exitRecord]) else { return nil }
        return try ExitRecord.read(RunDirectory(run))
    }

    /// A data file only rank 1 is given (mpirun's MPMD form): rank 1 prints the line, every rank exits 2, and rank 0
    /// records rank 1's cause, rank and very line.
    func testAnotherRanksMistakeIsRecordedByRankZero() throws {
        try PlexusProcess.requireBinary()
        guard let mpirun = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first(where: { FileManager.default.isExecutableFile(atPath: $0) })
        else { throw XCTSkip("mpirun is not installed") }
        let config = writeConfig(epochs: 1), run = directory + "/run"
        try RunDirectory(run).create()
        let train = [PlexusProcess.binary, "train", config, "--run-dir", run]
        let result = try PlexusProcess.run(mpirun, ["--oversubscribe", "-np", "1"] + train
                                           + [":", "-np", "1"] + train + ["--set", "data.train=\(directory)/nothing/train"])
        XCTAssertEqual(result.status, 2, result.standardError)
        let line = result.standardError.split(separator: "\n").map(String.init).filter { $0.hasPrefix("plexus: ") }
        XCTAssertEqual(line.count, 1, result.standardError)
        XCTAssertTrue(line[0].hasPrefix("plexus: rank 1: \(directory)/nothing/train"), line[0])
        XCTAssertEqual(try record(run), ExitRecord(status: 2, cause: .userError, rank: 1, step: nil, message: line[0]))
    }

    /// A disk that fills up while the run trains (root: a small tmpfs, filled to the last byte once a checkpoint is
    /// written): status 2, and exit.json still says disk_full, through the space claimed at the start.
    func testFullDiskMidRunIsRecorded() throws {
        try PlexusProcess.requireBinary()
        guard getuid() == 0 else { throw XCTSkip("mounting a small tmpfs to fill the disk needs root") }
        let mountPoint = directory + "/small"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        let mount = try PlexusProcess.run("/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", mountPoint])
        XCTAssertEqual(mount.status, 0, mount.standardError)
        defer { _ = try? PlexusProcess.run("/bin/umount", [mountPoint]) }
        let run = mountPoint + "/run", errors = directory + "/stderr"
        _ = FileManager.default.createFile(atPath: errors, contents: nil)
        let process = PlexusProcess.configured(PlexusProcess.binary, ["train", writeConfig(epochs: 400), "--run-dir", run])
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errors))
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        let deadline = Date().addingTimeInterval(60)
        while process.isRunning && Date() < deadline && Checkpoint.checkpointFiles(in: RunDirectory(run)).isEmpty { usleep(10_000) }
        XCTAssertTrue(process.isRunning, "the run ended before the disk was filled")

        let filler = open(mountPoint + "/filler", O_WRONLY | O_CREAT, 0o644)
        let block = [UInt8](repeating: 1, count: 4096)
        while block.withUnsafeBytes({ Glibc.write(filler, $0.baseAddress, $0.count) }) > 0 {}
        while block.withUnsafeBytes({ Glibc.write(filler, $0.baseAddress, 1) }) > 0 {}
        close(filler)
        XCTAssertTrue(PlexusProcess.wait(for: process, seconds: 60), "still running 60 s after the disk filled")
        XCTAssertEqual(process.terminationStatus, 2)

        let line = try String(contentsOfFile: errors, encoding: .utf8).split(separator: "\n").map(String.init)
            .last { $0.hasPrefix("plexus: ") } ?? ""
        XCTAssertTrue(line.contains("No space left on device"), line)
        let written = try XCTUnwrap(try record(run), "no exit.json on the full disk")
        XCTAssertEqual(written.status, 2)
        XCTAssertEqual(written.cause, .diskFull)
        XCTAssertEqual(written.rank, 0)
        XCTAssertEqual(written.message, line)
    }

    /// SIGKILL of rank 1: nobody can record the end, so there is no exit.json — not even a previous job's, which rank 0
    /// removed when it claimed the space — and launch/supervise goes by mpirun's status.
    func testKilledRankLeavesNoRecord() throws {
        try PlexusProcess.requireBinary()
        let run = directory + "/killed", files = RunDirectory(run)
        try files.create()
        try FileIO.writeAtomically(JSON.text(ExitRecord(status: 0, cause: .completed, rank: nil, step: 9, message: "plexus: done")),
                                   to: files[.exitRecord])
        let process = try PlexusProcess.start("/usr/bin/mpirun", ["-np", "2", "--oversubscribe", PlexusProcess.binary, "train",
                                                                  writeConfig(epochs: 400), "--run-dir", run])
        defer { if process.isRunning { process.terminate() } }
        let deadline = Date().addingTimeInterval(60)
        while process.isRunning && Date() < deadline && Checkpoint.checkpointFiles(in: files).isEmpty { usleep(10_000) }
        XCTAssertNil(try record(run), "the previous job's record is removed when the run starts")
        let rank1 = try XCTUnwrap(rankOneProcess(run), "rank 1 is not running")
        kill(rank1, SIGKILL)
        XCTAssertTrue(PlexusProcess.wait(for: process, seconds: 30))
        XCTAssertEqual(process.terminationStatus, 128 + SIGKILL, "mpirun's status names the signal")
        XCTAssertNil(try record(run))
        XCTAssertTrue(FileManager.default.fileExists(atPath: files.claimedExitRecord), "the space stays claimed")
    }

    /// The pid of rank 1 of a job training into `run` (OMPI_COMM_WORLD_RANK in its environment).
    func rankOneProcess(_ run: String) -> Int32? {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.first { pid in
            guard let arguments = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"),
                  let environment = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return false }
            return arguments.split(separator: 0).contains(Data(run.utf8))
                && environment.split(separator: 0).contains(Data("OMPI_COMM_WORLD_RANK=1".utf8))
        }
    }
}
