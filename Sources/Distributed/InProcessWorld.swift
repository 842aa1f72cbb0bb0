import Foundation
import Support

/// A world of ranks as threads of this process, for tests of what runs on several ranks without a launcher:
/// `InProcessWorld.run(ranks:ranksPerNode:)` runs a closure per rank, each on its own thread with its own
/// `InProcessCommunicator`. Ranks 0..<ranksPerNode form node 0, the next ranksPerNode node 1, and so on (mpirun's
/// default placement); a node group's shared memory is real memory that its threads share.
///
/// No wait hangs: a collective throws `CollectiveStalled` after `timeoutSeconds`, and at once when a rank it waits
/// for has ended (returned, thrown or aborted) without joining it.
final class InProcessWorld {
    let size: Int
    let ranksPerNode: Int
    private let lock = NSLock()
    /// Guarded by `lock`: which ranks have ended, what each one's body gave, the groups made so far by name.
    private var outcomes: [Outcome?]
    private var abortion: InProcessAbort?
    private var groups: [String: InProcessGroup] = [:]
    private let finished = DispatchGroup()

    /// How one rank's body ended.
    private enum Outcome {
        case returned(Any)
        case threw(Error)
        case aborted(InProcessAbort)
    }

    private init(size: Int, ranksPerNode: Int) {
        precondition(size > 0 && ranksPerNode > 0, "InProcessWorld: no ranks")
        self.size = size
        self.ranksPerNode = ranksPerNode
        outcomes = Array(repeating: nil, count: size)
    }

    /// Runs `body` on `ranks` threads, each with its rank's communicator of one new world, and returns what each
    /// rank returned or threw, by rank. Every collective waits at most `timeoutSeconds`.
    static func run<Value>(ranks: Int, ranksPerNode: Int = 1, timeoutSeconds: Double = 60,
                           _ body: @escaping (Communicator) throws -> Value) -> [Result<Value, Error>] {
        let world = InProcessWorld(size: ranks, ranksPerNode: ranksPerNode)
        let everyone = world.group(named: "world", members: Array(0..<ranks))
        for rank in 0..<ranks {
            world.finished.enter()
            let thread = Thread {
                let communicator = InProcessCommunicator(world: world, group: everyone, members: Array(0..<ranks), rank: rank)
                communicator.timeoutSeconds = timeoutSeconds
                let outcome: Outcome
                do { outcome = .returned(try body(communicator)) } catch { outcome = .threw(error) }
                world.end(rank, outcome)
            }
            thread.name = "plexus-rank-\(rank)"
            thread.stackSize = 16 << 20
            thread.start()
        }
        world.finished.wait()
        return world.lock.withLock {
            world.outcomes.map { outcome -> Result<Value, Error> in
                switch outcome! {
                case let .returned(value): return .success(value as! Value)
                case let .threw(error): return .failure(error)
                case let .aborted(abort): return .failure(abort)
                }
            }
        }
    }

    /// The node of world rank `rank`.
    func node(of rank: Int) -> Int { rank / ranksPerNode }

    /// The shared state of the group `name` (the same name on every member gives the same group).
    func group(named name: String, members: [Int]) -> InProcessGroup {
        lock.withLock {
            if let existing = groups[name] { return existing }
            let created = InProcessGroup(world: self, members: members)
            groups[name] = created
            return created
        }
    }

    /// Why a wait for `ranks` (world ranks) cannot end: the world was aborted, or one of them has ended.
    func failure(waitingFor ranks: [Int], in call: String) -> Error? {
        lock.withLock {
            if let abortion { return abortion }
            guard let ended = ranks.first(where: { outcomes[$0] != nil }) else { return nil }
            return CommunicationError("rank \(ended) ended without joining this \(call)")
        }
    }

    /// Rank `rank` aborts the world with `status`: every wait of the other ranks fails (its thread ends next).
    func abort(_ rank: Int, status: Int32) {
        let abort = InProcessAbort(rank: rank, status: status)
        lock.withLock { abortion = abortion ?? abort }
        end(rank, .aborted(abort))
    }

    /// Records how `rank` ended and wakes every wait, so ranks waiting for it learn it left.
    private func end(_ rank: Int, _ outcome: Outcome) {
        let all = lock.withLock {
            outcomes[rank] = outcome
            return Array(groups.values)
        }
        for group in all { group.wake() }
        finished.leave()
    }
}

/// A rank of an in-process world called `abort(status:)`: its own result, and what every other rank's waits throw.
struct InProcessAbort: Error, CustomStringConvertible {
    let rank: Int
    let status: Int32
    var description: String { "rank \(rank) aborted the job with status \(status)" }
}

/// What the ranks of one in-process group share: the rendezvous of its collectives and the mailboxes of its
/// point-to-point messages, under one lock.
final class InProcessGroup {
    /// World ranks of the members, in group order.
    let members: [Int]
    private unowned let world: InProcessWorld
    private let condition = NSCondition()
    /// Guarded by `condition`: who has arrived in this round and what each brought, what every member brought to
    /// the last complete round, the count of complete rounds, and the messages in flight with a count of sends.
    private var arrived: [Bool]
    private var posted: [InProcessBytes?]
    private var completed: [InProcessBytes?] = []
    private var round = 0
    private var mail: [Mailbox: [[UInt8]]] = [:]
    private var sends = 0

    private struct Mailbox: Hashable {
        let source: Int, destination: Int, tag: Int
    }

    init(world: InProcessWorld, members: [Int]) {
        self.world = world
        self.members = members
        arrived = Array(repeating: false, count: members.count)
        posted = Array(repeating: nil, count: members.count)
    }

    /// Wakes every wait (a rank ended), so it can look again.
    func wake() {
        condition.lock()
        condition.broadcast()
        condition.unlock()
    }

    /// What every member brought (member `index` brings `contribution`), once all have arrived. Waits at most
    /// `state`'s timeout; a member that ended before arriving makes it throw at once.
    func gather(_ contribution: InProcessBytes?, from index: Int, state: InProcessRankState, call: String) throws -> [InProcessBytes?] {
        condition.lock()
        defer { condition.unlock() }
        let current = round
        (arrived[index], posted[index]) = (true, contribution)
        if !arrived.contains(false) {
            completed = posted
            arrived = Array(repeating: false, count: members.count)
            posted = Array(repeating: nil, count: members.count)
            round += 1
            condition.broadcast()
            return completed
        }
        let deadline = Date(timeIntervalSinceNow: state.timeoutSeconds)
        while round == current {
            let missing = members.indices.filter { !arrived[$0] }.map { members[$0] }
            // Leaving, this rank takes back what it brought: the round cannot complete without it.
            if let failure = world.failure(waitingFor: missing, in: call) {
                (arrived[index], posted[index]) = (false, nil)
                throw failure
            }
            if !condition.wait(until: deadline) && round == current {
                (arrived[index], posted[index]) = (false, nil)
                throw state.stalled(waitingFor: missing)
            }
        }
        return completed
    }

    /// Number of messages sent so far in this group (to wait for the next one).
    var sendCount: Int {
        condition.lock()
        defer { condition.unlock() }
        return sends
    }

    /// Leaves a copy of `bytes` for member `destination` from member `source` (a send completes at once).
    func send(_ bytes: UnsafeRawBufferPointer, from source: Int, to destination: Int, tag: Int) {
        condition.lock()
        mail[Mailbox(source: source, destination: destination, tag: tag), default: []].append(Array(bytes))
        sends += 1
        condition.broadcast()
        condition.unlock()
    }

    /// Takes the oldest message from `source` to `destination` into `target` if one has come (MPI's order).
    func receive(into target: UnsafeMutableRawBufferPointer, from source: Int, to destination: Int, tag: Int) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        let box = Mailbox(source: source, destination: destination, tag: tag)
        guard let message = mail[box]?.first else { return false }
        precondition(message.count == target.count, "in-process message of \(message.count) bytes, expected \(target.count)")
        mail[box]!.removeFirst()
        message.withUnsafeBytes { target.copyMemory(from: $0) }
        return true
    }

    /// Waits until a message is sent after the first `count` ones, or throws: `source` (a member) ended, or
    /// `deadline` passed.
    func waitForSend(after count: Int, from source: Int, until deadline: Date, state: InProcessRankState, call: String) throws {
        condition.lock()
        defer { condition.unlock() }
        while sends == count {
            if let failure = world.failure(waitingFor: [members[source]], in: call) { throw failure }
            if !condition.wait(until: deadline) && sends == count { throw state.stalled(waitingFor: [members[source]]) }
        }
    }
}

/// Bytes one rank brings to an in-process collective (a copy of its values), or a node group's shared memory: one
/// allocation that every rank's thread may use, freed with the last reference to it.
final class InProcessBytes {
    let base: UnsafeMutableRawPointer
    let count: Int

    init(count: Int) {
        self.count = count
        base = .allocate(byteCount: max(count, 64), alignment: 64)
    }

    convenience init(copying source: UnsafeRawPointer, count: Int) {
        self.init(count: count)
        base.copyMemory(from: source, byteCount: count)
    }

    deinit { base.deallocate() }
}
