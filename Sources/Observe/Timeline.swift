import Dispatch
import DataParallel
import Distributed
import Formats
import Foundation
import Support

/// What a timeline span covers: a phase of a step, or work between steps.
public enum TimelineSpanKind: UInt8, CaseIterable {
    case data, forward, backward, wait, reduce, optimizer, evaluation, checkpoint

    init(_ phase: StepPhase) {
        switch phase {
        case .data: self = .data
        case .forward: self = .forward
        case .backward: self = .backward
        case .wait: self = .wait
        case .reduce: self = .reduce
        case .optimizer: self = .optimizer
        }
    }

    /// The span's name in the trace (the reduce phase is the gradient allreduce and the per-step agreement).
    var name: String { String(describing: self) }
}

/// One recorded span: what, during which step (1-based), and when on this rank's monotonic clock (nanoseconds).
struct TimelineSpan: Equatable {
    var kind: TimelineSpanKind
    var step: Int
    var start: Int64
    var end: Int64
}

/// Records when each phase of the steps in a window began and ended, in memory sized once: a step observer that
/// never communicates and allocates nothing. Work between steps (evaluation, checkpoints) is recorded with `record`.
///
/// It can forward the step's phases to another observer (`plexus bench step` keeps its own timer behind it).
public final class TimelineRecorder: StepObserver {
    /// The steps recorded (1-based, inclusive).
    let window: ClosedRange<Int>
    let next: StepObserver?
    /// Spans of work between steps beyond this many are counted in `dropped`, not kept.
    static let betweenStepCapacity = 4096

    private let spans: UnsafeMutablePointer<TimelineSpan>
    private let capacity: Int
    private var count = 0
    private var betweenSteps = 0
    private(set) var dropped = 0
    /// The step being run (1-based) and whether it is in the window.
    private(set) var step: Int
    private var recording: Bool
    private var phase: TimelineSpanKind?
    private var phaseStart: Int64 = 0

    /// A recorder whose next step is `firstStep` (1-based).
    public init(window: ClosedRange<Int>, firstStep: Int, next: StepObserver? = nil) {
        self.window = window
        self.next = next
        step = firstStep
        recording = window.contains(firstStep)
        capacity = window.count * StepPhase.allCases.count + Self.betweenStepCapacity
        spans = .allocate(capacity: capacity)
    }

    deinit { spans.deallocate() }

    /// This rank's monotonic clock in nanoseconds.
    static func now() -> Int64 { Int64(DispatchTime.now().uptimeNanoseconds) }

    public func begin(_ next: StepPhase) throws {
        if recording {
            let now = Self.now()
            closePhase(at: now)
            phase = TimelineSpanKind(next)
            phaseStart = now
        }
        try self.next?.begin(next)
    }

    public func endStep(samples: Int) throws {
        if recording { closePhase(at: Self.now()) }
        step += 1
        recording = window.contains(step)
        try next?.endStep(samples: samples)
    }

    private func closePhase(at now: Int64) {
        guard let open = phase else { return }
        // The window's step spans always fit: capacity reserves a slot for every phase of every step in it.
        spans[count] = TimelineSpan(kind: open, step: step, start: phaseStart, end: now)
        count += 1
        phase = nil
    }

    /// Records work between steps (evaluation, a checkpoint) after step `step`, at any step.
    func record(_ kind: TimelineSpanKind, step: Int, start: Int64, end: Int64) {
        guard betweenSteps < Self.betweenStepCapacity else {
            dropped += 1
            return
        }
        betweenSteps += 1
        spans[count] = TimelineSpan(kind: kind, step: step, start: start, end: end)
        count += 1
    }

    /// Everything recorded so far, in order.
    var recorded: [TimelineSpan] { Array(UnsafeBufferPointer(start: spans, count: count)) }
}

/// Timestamps of all ranks on rank 0's clock: each rank's offset is measured once at start-up.
struct ClockAlignment {
    /// Subtracted from this rank's clock to get nanoseconds since rank 0's origin.
    let shift: Int64

    /// Measures every rank's clock against rank 0's (every rank calls it), as NTP does: in each of `rounds` rounds
    /// rank 0 broadcasts its time T1, each rank notes when it arrived (T2) and, in turn, broadcasts T2 and the time it
    /// replies (T3), which rank 0 receives at T4. A rank's offset is ((T2 − T1) + (T3 − T4)) / 2 from the round with
    /// the shortest round trip (T4 − T1) − (T3 − T2); its error is at most half that round trip (microseconds between
    /// processes of one host), however loaded the machine was in the other rounds.
    static func measure(_ communicator: Communicator, rounds: Int = 10) throws -> ClockAlignment {
        let size = communicator.size, rank = communicator.rank
        var best = [(roundTrip: Int64, offset: Int64)](repeating: (.max, 0), count: size)
        var origin: Int64 = 0
        for round in 0..<rounds {
            try communicator.barrier()
            var sent = TimelineRecorder.now()
            try withUnsafeMutableBytes(of: &sent) { try communicator.broadcast($0, root: 0) }
            let arrived = TimelineRecorder.now()
            if round == 0 { origin = sent }
            for responder in 1..<max(1, size) {
                var times = [arrived, TimelineRecorder.now()]
                try times.withUnsafeMutableBytes { try communicator.broadcast($0, root: responder) }
                let returned = TimelineRecorder.now()
                let roundTrip = (returned - sent) - (times[1] - times[0])
                if rank == 0 && roundTrip < best[responder].roundTrip {
                    best[responder] = (roundTrip, ((times[0] - sent) + (times[1] - returned)) / 2)
                }
            }
        }
        // Rank 0 tells each rank its offset, and its own origin (its first reading) as everyone's zero.
        var offsets = [0] + best.dropFirst().map(\.offset) + [origin]
        try offsets.withUnsafeMutableBytes { try communicator.broadcast($0, root: 0) }
        return ClockAlignment(shift: offsets[rank] + offsets[size])
    }
}

/// The timeline of every rank, as rank 0 writes it: Chrome's trace-event JSON (Perfetto, chrome://tracing).
enum TimelineTrace {
    /// Gathers every rank's spans to rank 0 (every rank calls it) on rank 0's clock; nil on the other ranks.
    static func gather(_ spans: [TimelineSpan], alignment: ClockAlignment, communicator: Communicator) throws -> [[TimelineSpan]]? {
        let mine = spans.map { "\($0.kind.rawValue) \($0.step) \($0.start - alignment.shift) \($0.end - alignment.shift)" }
            .joined(separator: "\n")
        var ranks: [[TimelineSpan]] = []
        for root in 0..<communicator.size {
            let text = try communicator.broadcast(communicator.rank == root ? mine : "", root: root)
            guard communicator.rank == 0 else { continue }
            ranks.append(text.split(separator: "\n").compactMap { line in
                let fields = line.split(separator: " ").compactMap { Int64($0) }
                guard fields.count == 4, let kind = UInt8(exactly: fields[0]).flatMap(TimelineSpanKind.init(rawValue:)) else {
                    return nil
                }
                return TimelineSpan(kind: kind, step: Int(fields[1]), start: fields[2], end: fields[3])
            })
        }
        return communicator.rank == 0 ? ranks : nil
    }

    /// One trace event: a complete span (`ph` X) or process metadata (`ph` M).
    struct Event: Encodable, Equatable {
        var name: String
        var ph: String
        var pid: Int
        var tid = 0
        /// Microseconds since rank 0's origin.
        var ts: Double?
        var dur: Double?
        var cat: String?
        var args: [String: Argument]
    }

    /// An argument value of a trace event.
    enum Argument: Encodable, Equatable {
        case integer(Int)
        case number(Double)
        case text(String)

        func encode(to encoder: Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case let .integer(value): try container.encode(value)
            case let .number(value): try container.encode(value)
            case let .text(value): try container.encode(value)
            }
        }
    }

    /// The trace events of `ranks` (index = rank): each rank's spans, with the wait for the slowest rank cut from the
    /// front of each allreduce — from this rank's arrival until the last rank's arrival at the same step's reduction.
    static func events(_ ranks: [[TimelineSpan]]) -> [Event] {
        var latestArrival: [Int: (time: Int64, rank: Int)] = [:]
        var arrivals: [Int: Int] = [:]
        for (rank, spans) in ranks.enumerated() {
            for span in spans where span.kind == .reduce {
                arrivals[span.step, default: 0] += 1
                if latestArrival[span.step].map({ span.start > $0.time }) ?? true { latestArrival[span.step] = (span.start, rank) }
            }
        }
        var events: [Event] = []
        for (rank, spans) in ranks.enumerated() {
            events.append(Event(name: "process_name", ph: "M", pid: rank, args: ["name": .text("rank \(rank)")]))
            events.append(Event(name: "process_sort_index", ph: "M", pid: rank, args: ["sort_index": .integer(rank)]))
            for span in spans {
                var start = span.start
                if span.kind == .reduce, ranks.count > 1, arrivals[span.step] == ranks.count, let latest = latestArrival[span.step],
                   latest.time > span.start {
                    let waitEnd = min(latest.time, span.end)
                    events.append(complete(.wait, rank: rank, step: span.step, start: span.start, end: waitEnd,
                                           extra: ["waiting_for_rank": .integer(latest.rank)]))
                    start = waitEnd
                }
                events.append(complete(span.kind, rank: rank, step: span.step, start: start, end: span.end))
            }
        }
        return events
    }

    private static func complete(_ kind: TimelineSpanKind, rank: Int, step: Int, start: Int64, end: Int64,
                                 extra: [String: Argument] = [:]) -> Event {
        Event(name: kind.name, ph: "X", pid: rank, ts: Double(start) / 1000, dur: Double(max(0, end - start)) / 1000,
              cat: kind.rawValue < TimelineSpanKind.evaluation.rawValue ? "step" : "run",
              args: extra.merging(["step": .integer(step)]) { first, _ in first })
    }

    /// The trace file's JSON text; `pace`, the slowest rank over the last steps, goes to its `otherData`.
    static func json(_ ranks: [[TimelineSpan]], dropped: Int, pace: RankPace.Figures? = nil) -> String {
        struct File: Encodable {
            let traceEvents: [Event]
            let displayTimeUnit = "ms"
            let otherData: [String: Argument]
        }
        var other: [String: Argument] = [
            "producer": .text("plexus"), "ranks": .integer(ranks.count), "dropped_spans": .integer(dropped),
        ]
        if let pace {
            other["slowest_rank"] = .integer(pace.slowestRank)
            other["slowest_rank_ratio"] = .number(pace.ratio)
            other["wait_fraction"] = .number(pace.waitFraction)
        }
        return JSON.text(File(traceEvents: events(ranks), otherData: other))
    }
}
