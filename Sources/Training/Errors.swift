import Distributed
import Foundation
import Support

/// Training stopped on a signal after saving a checkpoint (exit status 75, EX_TEMPFAIL: resume later).
struct TrainingStopped: AgreedStop {
    public var exitStatus: Int32 { 75 }
    var cause: ExitCause { .signal }
    let step: Int
    var stepInvolved: Int? { step }
    let checkpoint: String?
    var description: String {
        "stopped by signal after step \(step)" + (checkpoint.map { "; checkpoint \($0); continue with --resume" } ?? "")
    }
}

/// The loss or a gradient became NaN or infinite (or left the fixed-point range): training stops (exit status 3).
public struct TrainingDiverged: AgreedStop {
    public var exitStatus: Int32 { 3 }
    public var cause: ExitCause { .diverged }
    let step: Int
    let epoch: Int
    let loss: Double
    let fixedPointOverflow: Bool
    let lastCheckpoint: String?
    public var stepInvolved: Int? { step }

    /// Divergence at optimizer step `step` (1-based) of epoch `epoch`; `lastCheckpoint` is the one to go back to.
    public init(step: Int, epoch: Int, loss: Double, fixedPointOverflow: Bool, lastCheckpoint: String?) {
        (self.step, self.epoch, self.loss, self.fixedPointOverflow, self.lastCheckpoint) = (step, epoch, loss, fixedPointOverflow,
                                                                                            lastCheckpoint)
    }

    public var description: String {
        let what = fixedPointOverflow
            ? "a gradient left the deterministic fixed-point range (|g| ≥ 2048 per group)"
            : "non-finite loss or gradient (loss \(loss))"
        return "\(what) at step \(step) (epoch \(epoch)); training stopped; "
            + (lastCheckpoint.map { "last good checkpoint: \($0)" } ?? "no checkpoint was saved")
    }
}

/// The one line `plexus` prints for `error` on stderr: prefixed with the rank when there are several and the error
/// was one rank's own, with `error: ` for an internal failure (not the user's mistake, not an agreed stop).
public func errorLine(for error: Error, rank: Int, worldSize: Int) -> String {
    var error = error
    var prefix = "plexus: "
    if let failure = error as? CollectiveFailure, let own = failure.error {
        // One rank's failure: name the rank, as for an error only that rank met.
        error = own
        if worldSize > 1 { prefix += "rank \(rank): " }
    } else if worldSize > 1, (error as? CollectiveStalled).map({ $0.rankInvolved == nil }) ?? !(error is AgreedStop) {
        // This rank's own error, or its own stall (it was stopped while the others waited): name the rank.
        prefix += "rank \(rank): "
    }
    // One line whatever the error carries (a path from YAML may hold a line break).
    let text = String(describing: error).replacingOccurrences(of: "\n", with: "\\n")
    let kind = isUserError(error) || error is AgreedStop || error is CollectiveStalled ? "" : "error: "
    return prefix + kind + text
}

/// The line the reporting rank printed for `error`, as rank `rank` can tell it: its own line, or for another rank's
/// failure inside `collectively` that rank's (whose message and cause every rank received).
func reportedLine(for error: Error, rank: Int, worldSize: Int) -> String {
    guard let failure = error as? CollectiveFailure, failure.error == nil, worldSize > 1 else {
        return errorLine(for: error, rank: rank, worldSize: worldSize)
    }
    let kind = failure.cause == .internal ? "error: " : ""
    return "plexus: rank \(failure.reportingRank): " + kind + failure.description.replacingOccurrences(of: "\n", with: "\\n")
}
