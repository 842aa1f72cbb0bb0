import Distributed
import Support

/// Records how a `plexus train` job ended in RUN_DIR/exit.json: rank 0, once it holds the run directory's lock,
/// claims the file's space; the executable calls `record` last, with the status the process exits with.
public final class ExitRecorder {
    /// The claimed exit.json (rank 0 of a run that started; nil elsewhere).
    private var claimed: ClaimedExitRecord?
    /// The optimizer steps and the last line of a run that finished.
    private var completion: (steps: Int, line: String)?

    /// A recorder that records nothing until a run claims its exit.json.
    public init() {}

    /// Claims `files`' exit.json for this job (rank 0, under the run directory's lock).
    func claim(_ files: RunDirectory) throws {
        claimed = try ClaimedExitRecord(files)
    }

    /// Gives the claim up: the run never started and its directory is removed.
    func abandon() {
        claimed?.release()
        claimed = nil
    }

    /// Notes that training finished after `steps` steps with `line` as its last line.
    func finished(steps: Int, line: String) {
        completion = (steps, line)
    }

    /// The record of a job that ends with `status`, `error` (nil: it completed) on `communicator`'s rank.
    func record(status: Int32, error: Error?, communicator: Communicator) -> ExitRecord {
        guard let error else {
            return ExitRecord(status: status, cause: .completed, rank: nil, step: completion?.steps,
                              message: completion?.line ?? "plexus: done")
        }
        let classified = error as? ClassifiedError
        // An agreed stop is the job's as a whole unless it names a rank; any other error is this rank's own.
        let rank = classified?.rankInvolved ?? (error is AgreedStop ? nil : communicator.rank)
        var step = classified?.stepInvolved
        if step == nil, case let .step(current) = communicator.activity { step = current }
        return ExitRecord(status: status, cause: exitCause(of: error), rank: rank, step: step,
                          message: reportedLine(for: error, rank: communicator.rank, worldSize: communicator.size))
    }

    /// Writes exit.json for a job ending with `status` and `error` (nil: it completed), if this rank claimed it; a
    /// failure to write is a warning, since the job ends anyway.
    public func write(status: Int32, error: Error?, communicator: Communicator) {
        guard let claimed else { return }
        self.claimed = nil
        do {
            try claimed.write(record(status: status, error: error, communicator: communicator))
        } catch {
            Diagnostics.warning("\(error)")
        }
    }
}
