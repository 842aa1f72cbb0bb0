import Foundation

/// SIGUSR1, SIGTERM and SIGINT (what Slurm and mpirun send before a preemption or time limit, and Ctrl-C)
/// only set a flag; the training loop agrees on it across ranks at the next step boundary.
enum StopSignal {
    nonisolated(unsafe) static var flag: sig_atomic_t = 0
    nonisolated(unsafe) static var installed = false

    static var requested: Bool { flag != 0 }

    static func install() {
        guard !installed else { return }
        installed = true
        for number in [SIGUSR1, SIGTERM, SIGINT] {
            signal(number) { _ in StopSignal.flag = 1 }
        }
    }
}

/// An error every rank reaches at the same point, so the job can end without MPI_Abort.
public protocol AgreedStop: Error, CustomStringConvertible {
    /// The process exit status for it.
    var exitStatus: Int32 { get }
}

/// Training stopped on a signal after saving a checkpoint (exit status 75, EX_TEMPFAIL: resume later).
public struct TrainingStopped: AgreedStop {
    public var exitStatus: Int32 { 75 }
    public let step: Int
    public let checkpoint: String?
    public var description: String {
        "stopped by signal after step \(step)" + (checkpoint.map { "; checkpoint \($0); continue with --resume" } ?? "")
    }
}

/// The loss or a gradient became NaN or infinite (or left the fixed-point range): training stops (exit status 3).
public struct TrainingDiverged: AgreedStop {
    public var exitStatus: Int32 { 3 }
    public let step: Int
    public let epoch: Int
    public let loss: Double
    public let fixedPointOverflow: Bool
    public let lastCheckpoint: String?
    public var description: String {
        let what = fixedPointOverflow
            ? "a gradient left the deterministic fixed-point range (|g| ≥ 2048 per group)"
            : "non-finite loss or gradient (loss \(loss))"
        return "\(what) at step \(step) (epoch \(epoch)); training stopped; "
            + (lastCheckpoint.map { "last good checkpoint: \($0)" } ?? "no checkpoint was saved")
    }
}

/// Wall-clock split of the training step, summed over steps.
public struct StepTimings: Codable, Equatable {
    public var steps = 0
    public var samples = 0
    public var data = 0.0
    public var forward = 0.0
    /// Loss gradient and back-propagation (and, in deterministic mode, the fixed-point accumulation).
    public var backward = 0.0
    /// Waiting at a barrier for the slowest rank before the allreduce (`bench step` at several ranks only).
    public var wait = 0.0
    /// The gradient allreduce and the small agreement allreduce.
    public var allreduce = 0.0
    public var optimizer = 0.0

    public init() {}

    /// Seconds of all parts together.
    public var total: Double { data + forward + backward + wait + allreduce + optimizer }
}

/// Splits elapsed time into laps with the monotonic clock.
struct StepClock {
    private var last = DispatchTime.now().uptimeNanoseconds

    mutating func lap() -> Double {
        let now = DispatchTime.now().uptimeNanoseconds
        defer { last = now }
        return Double(now - last) * 1e-9
    }
}
