import Dispatch
import Distributed
import Support

/// The parts of a training step, in the order the step runs them.
public enum StepPhase: Int, CaseIterable, Sendable {
    /// Gathering and normalizing this rank's rows.
    case data
    case forward
    /// The loss gradient and back-propagation (with whatever the reduction does while it runs).
    case backward
    /// Waiting for the slowest rank: only an observer that synchronizes the ranks reports it (`plexus bench step`).
    case wait
    /// Completing the gradient reduction and the per-step agreement.
    case reduce
    /// Gradient norm, clipping and the optimizer update.
    case optimizer
}

/// Hears where a training step is, for timing; training runs without one, so the step pays nothing for it.
///
/// Observers used in training never communicate; one used by a benchmark may (e.g. a barrier before `.reduce`).
public protocol StepObserver: AnyObject {
    /// The step is starting `phase`; the phase before it, if any, has ended.
    func begin(_ phase: StepPhase) throws
    /// The step has ended (and its last phase with it), having trained on `samples` samples of the global batch.
    func endStep(samples: Int) throws
}

/// Wall-clock split of the training step, summed over steps.
public struct StepTimings: Codable, Equatable {
    public var steps = 0
    public var samples = 0
    public var data = 0.0
    public var forward = 0.0
    /// Loss gradient and back-propagation (and, in deterministic mode, the fixed-point accumulation).
    public var backward = 0.0
    /// Waiting at a barrier for the slowest rank before the reduction (`bench step` at several ranks only).
    public var wait = 0.0
    /// The gradient reduction and the small agreement allreduce.
    public var reduce = 0.0
    public var optimizer = 0.0

    init() {}

    /// Seconds of all parts together.
    public var total: Double { data + forward + backward + wait + reduce + optimizer }

    /// Adds `seconds` to the part that times `phase`.
    mutating func add(_ seconds: Double, to phase: StepPhase) {
        switch phase {
        case .data: data += seconds
        case .forward: forward += seconds
        case .backward: backward += seconds
        case .wait: wait += seconds
        case .reduce: reduce += seconds
        case .optimizer: optimizer += seconds
        }
    }
}

/// Times each phase of every step with the monotonic clock.
public final class StepTimer: StepObserver {
    /// The time spent in each phase since the last `reset`.
    public private(set) var timings = StepTimings()
    private var phase: StepPhase?
    private var last: UInt64 = 0

    public init() {}

    /// Forgets what was measured so far (e.g. after warm-up steps).
    public func reset() { timings = StepTimings() }

    public func begin(_ next: StepPhase) {
        let now = DispatchTime.now().uptimeNanoseconds
        if let phase { timings.add(Double(now - last) * 1e-9, to: phase) }
        phase = next
        last = now
    }

    public func endStep(samples: Int) {
        if let phase { timings.add(Double(DispatchTime.now().uptimeNanoseconds - last) * 1e-9, to: phase) }
        phase = nil
        timings.steps += 1
        timings.samples += samples
    }
}
