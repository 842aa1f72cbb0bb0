import Foundation
import Support

/// The one writer of a run directory: rank 0 of `plexus train` holds an exclusive `flock` on RUN_DIR/train.lock for
/// the run's lifetime. The kernel releases it when the process ends, however it ends, so a killed run leaves no
/// stale lock; a second `train` into the directory stops at once naming the holder. Readers (`evaluate`) take none.
///
/// On NFS, Linux emulates `flock` with byte-range locks the server arbitrates, so two hosts exclude each other too.
final class RunDirectoryLock {
    let files: RunDirectory
    private let descriptor: Int32
    /// Whether this lock created the run directory (so a run that fails to start can leave no trace).
    let createdDirectory: Bool

    /// Takes the lock, creating the run directory if needed; a UserError (status 2) names the holder if it is taken.
    init(_ files: RunDirectory) throws {
        self.files = files
        let runDirectory = files.path
        var isDirectory: ObjCBool = false
        let existed = FileManager.default.fileExists(atPath: runDirectory, isDirectory: &isDirectory)
        if existed && !isDirectory.boolValue { throw UserError("\(runDirectory): exists and is not a directory (--run-dir)") }
        if !existed { try files.create() }
        createdDirectory = !existed
        let path = files[.lock]
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw UserError("\(path): cannot open the run directory's lock: \(FileIO.errorText(errno))") }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            let holder = RunDirectoryLock.holder(descriptor)
            close(descriptor)
            if code == EWOULDBLOCK {
                throw UserError("\(runDirectory): in use by another plexus train (\(holder)); wait for it to end "
                    + "or choose another --run-dir")
            }
            throw UserError("\(path): cannot lock the run directory: \(FileIO.errorText(code))")
        }
        // Who holds it, for the message of the next one that tries.
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count - 1)
        let text = Array("\(String(cString: host)) \(getpid())\n".utf8)
        _ = ftruncate(descriptor, 0)
        _ = text.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
        // No other writer can run now: temporary files in the directory are leftovers of a killed one.
        FileIO.removeLeftoverTemporaries(in: runDirectory)
        FileIO.removeLeftoverTemporaries(in: files[.checkpoints])
    }

    deinit { close(descriptor) }

    /// "on HOST (pid PID)" from the lock file's text, as the holder wrote it.
    private static func holder(_ descriptor: Int32) -> String {
        var bytes = [UInt8](repeating: 0, count: 512)
        let count = bytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
        let fields = String(decoding: bytes.prefix(max(0, count)), as: UTF8.self).split(separator: " ")
            .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        guard fields.count == 2, Int(fields[1]) != nil else { return "holder unknown" }
        return "host \(escapedForMessage(fields[0], limit: 64)), pid \(fields[1])"
    }

    /// Removes the lock file and the run directory if this lock created it and the run never started (it is empty).
    func discardIfUnused() {
        guard createdDirectory else { return }
        unlink(files[.lock])
        rmdir(files.path)
    }
}

/// RUN_DIR/restarts.jsonl: one JSON line per automatic restart (time, exit status, cause, checkpoint), appended by
/// `launch/supervise` while no job runs; summary.json counts its lines.
enum RestartLog {
    /// The restarts recorded for a run directory.
    static func count(in files: RunDirectory) -> Int {
        guard let text = try? String(contentsOfFile: files[.restarts], encoding: .utf8) else { return 0 }
        return text.split(separator: "\n").filter { !$0.allSatisfy(\.isWhitespace) }.count
    }
}
