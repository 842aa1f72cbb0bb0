import Distributed
import Formats
import Kernels
import NeuralNet
import Support

/// How the nodes' parameters stay one model: the reduction each step uses, and what happens after it.
///
/// Every step (`EveryStepSync`): the gradient of the global batch on every rank, so nothing after the step.
/// Periodic (`PeriodicSync`): local steps on each node's rows, then the nodes average their parameters.
public protocol Synchronization: AnyObject {
    /// The reduction of step `step` (0-based).
    func reduction(forStep step: Int) -> GradientReduction
    /// After step `step`'s optimizer step: synchronizes the nodes when due, or now when `force` (every rank calls it
    /// with the same values).
    func afterStep(_ step: Int, force: Bool) throws
    /// Before a checkpoint (every rank calls it): the reduction's state and what synchronizing keeps, on rank 0.
    func checkpointState(optimizer: Optimizer) throws -> [TensorRecord]
    /// The node's ranks, which agree after the steps between rounds (nil: every step's agreement is over all ranks).
    var nodeAgreement: Communicator? { get }
    /// Whether step `step`'s agreement is over all ranks: every step, or with rounds at a round and at a synchronization
    /// `force`d by the loop (every rank calls it with the same values).
    func agreesAcrossNodes(afterStep step: Int, force: Bool) -> Bool
}

/// Today's data parallelism: every step reduces the gradients over all ranks.
public final class EveryStepSync: Synchronization {
    let reduction: GradientReduction

    /// Every step through `reduction`.
    public init(_ reduction: GradientReduction) { self.reduction = reduction }

    public func reduction(forStep step: Int) -> GradientReduction { reduction }
    public func afterStep(_ step: Int, force: Bool) throws {}
    public func checkpointState(optimizer: Optimizer) throws -> [TensorRecord] { try reduction.checkpointState(optimizer: optimizer) }
    public var nodeAgreement: Communicator? { nil }
    public func agreesAcrossNodes(afterStep step: Int, force: Bool) -> Bool { true }
}

/// DiLoCo's outer optimizer: SGD with Nesterov momentum over the nodes' mean parameter change (PyTorch's rule,
/// dampening 0).
public struct OuterOptimizerOptions: Equatable, Sendable {
    /// The update rule (Nesterov momentum SGD is the one there is).
    public enum Kind: String, CaseIterable, Sendable { case nesterov }

    public var kind: Kind
    public var learningRate: Float
    public var momentum: Float

    /// DiLoCo's values: learning rate 0.7, momentum 0.9.
    public init(kind: Kind = .nesterov, learningRate: Float = 0.7, momentum: Float = 0.9) {
        (self.kind, self.learningRate, self.momentum) = (kind, learningRate, momentum)
    }
}

/// When and how nodes synchronize: every `every` steps after `warmupSteps` synchronous ones, by averaging the
/// parameters or through `outer`, blocking or overlapped with the next round.
public struct SyncOptions: Equatable, Sendable {
    var every: Int
    var warmupSteps: Int
    var outer: OuterOptimizerOptions?
    /// Whether ranks sharing memory form one node (`distributed.shared_memory`).
    var sharedMemory: Bool
    /// Whether a round's sum between nodes runs during the next round's local steps (`distributed.sync_overlap`).
    var overlap: Bool

    /// Options as a config resolves them.
    public init(every: Int, warmupSteps: Int, outer: OuterOptimizerOptions?, sharedMemory: Bool, overlap: Bool = false) {
        (self.every, self.warmupSteps, self.outer, self.sharedMemory) = (every, warmupSteps, outer, sharedMemory)
        self.overlap = overlap
    }
}

/// The synchronization `options` ask for over the world `communicator`, whose every-step reduction is `reduction`:
/// periodic when `every` > 1 and there is more than one node, else every step (and a warning on rank 0 when
/// `every` > 1 found one node). Every rank calls it; `state` is a checkpoint's `sync.*` tensors on rank 0.
public func makeSynchronization(_ options: SyncOptions, reduction: GradientReduction, network: Network, optimizer: Optimizer,
                                communicator: Communicator, state: [TensorRecord] = []) throws
    -> Synchronization {
    guard options.every > 1 else { return EveryStepSync(reduction) }
    let (node, crossNode) = communicator.size > 1 ? try communicator.nodeGroups(sharedMemory: options.sharedMemory) : (communicator, communicator)
    guard crossNode.size > 1 else {
        if communicator.rank == 0 {
            Diagnostics.warning("distributed.sync_every \(options.every) ignored: all ranks are on one node, so every step "
                + "synchronizes through its memory")
        }
        return EveryStepSync(reduction)
    }
    return try PeriodicSync(options, reduction: reduction, network: network, optimizer: optimizer, communicator: communicator,
                            node: node, crossNode: crossNode, state: state)
}

/// Post-local SGD (Lin et al. 2020) and DiLoCo (Douillard et al. 2023): after `warmupSteps` synchronous steps each
/// node takes `every` optimizer steps on its own share of each global batch (its ranks still reduce every step
/// within the node), then the nodes average their parameters, or their changes since the last synchronization go
/// through the outer Nesterov optimizer. Each node keeps its own optimizer state.
///
/// Each rank averages its `updateRange` with the same slice of every other node (the hierarchical layout of the
/// node's shared memory), so the bytes between nodes are the parameters once per round.
///
/// With `overlap` (streaming DiLoCo's overlapped outer step): at a round boundary each node sends its round's
/// message m (the change a − x from the anchor a, or for the average its parameters x) through a ring sum and trains
/// on from the same parameters; the ring advances between layers and steps (`RingSum.test` on this thread) while
/// local steps run. `lagSteps` later the sum completes, which gives the new common parameters c (the outer step from
/// a with Δ = mean m, or the mean of the sent x), and the local progress made meanwhile is carried onto them:
/// x ← c + (x − s), s the parameters when m was taken; the next boundary's change a − x then covers the whole round.
/// The average lags a whole round (its sum completes at the next boundary, before that one goes out); the outer
/// optimizer a quarter round, since its momentum applied a whole round late cost epochs to an accuracy (more than 9
/// against blocking's 6 on the default config at `sync_every` 32; a quarter round needed 6), and it sends its change
/// in bfloat16 so that the sum fits in that quarter round (also 6 epochs). A forced synchronization (epoch end,
/// checkpoint, stop, the end) completes the sum in flight the same way and then synchronizes blocking in float, so
/// every node holds the same parameters and nothing is in flight afterwards.
final class PeriodicSync: Synchronization, CustomStringConvertible {
    let options: SyncOptions
    let global: GradientReduction
    let local: NodeLocalReduction
    let network: Network
    let crossNode: Communicator
    /// The parameters after the last synchronization and the outer momentum (this rank's slice; outer only).
    /// Buffers, not arrays: a round's loops over them run at memory speed, with no checks per element.
    let anchor: UnsafeMutableBufferPointer<Float>
    let outerMomentum: UnsafeMutableBufferPointer<Float>
    /// What a round sums over the nodes: the change from the anchor (outer), or the parameters (overlapped average).
    private let message: UnsafeMutableBufferPointer<Float>
    /// With overlap: the parameters when the message in flight was taken (s), and its ring sum.
    private let roundStart: UnsafeMutableBufferPointer<Float>
    private let ring: RingSum?
    /// The outer optimizer's overlapped change as sent: bfloat16, half the bytes (a change, not the parameters, so
    /// rounding it to 8 significant bits moves the outer step by at most 0.4% of itself).
    private let wire: UnsafeMutableBufferPointer<UInt16>
    /// Whether a round's sum was started and not yet applied.
    private(set) var roundInFlight = false
    /// The ring's tag on the cross-node group, apart from the gradient buckets' tags (0, 1, ...).
    static let ringTag = 4096
    /// With overlap: the steps after a round boundary at which its sum completes (1...every).
    var lagSteps: Int { options.outer == nil ? options.every : max(1, options.every / 4) }

    init(_ options: SyncOptions, reduction: GradientReduction, network: Network, optimizer: Optimizer, communicator: Communicator,
         node: Communicator, crossNode: Communicator, state: [TensorRecord]) throws {
        (self.options, self.global, self.network, self.crossNode) = (options, reduction, network, crossNode)
        let withinNode: GradientReduction = (reduction as? NodeSharedReduction)
            ?? FloatAllreduce(network: network, communicator: node)
        local = NodeLocalReduction(inner: withinNode, node: node, crossNode: crossNode)
        let slice = reduction.updateRange, outerCount = options.outer == nil ? 0 : slice.count
        let overlapCount = options.overlap ? slice.count : 0
        anchor = .allocate(capacity: outerCount)
        _ = anchor.initialize(from: UnsafeBufferPointer(rebasing: network.parameters[slice]).prefix(outerCount))
        outerMomentum = .allocate(capacity: outerCount)
        outerMomentum.initialize(repeating: 0)
        message = .allocate(capacity: max(outerCount, overlapCount))
        message.initialize(repeating: 0)
        roundStart = .allocate(capacity: overlapCount)
        roundStart.initialize(repeating: 0)
        ring = options.overlap ? crossNode.ringSum(capacity: slice.count, tag: Self.ringTag) : nil
        wire = .allocate(capacity: min(outerCount, overlapCount))
        wire.initialize(repeating: 0)
        local.background = ring
        try restore(state, optimizer: optimizer, communicator: communicator)
    }

    deinit {
        for buffer in [anchor, outerMomentum, message, roundStart] { buffer.deallocate() }
        wire.deallocate()
    }

    var description: String {
        "every \(options.every) steps between \(crossNode.size) nodes"
            + (options.warmupSteps > 0 ? " after \(options.warmupSteps) synchronous steps" : "")
            + (options.outer.map { ", outer Nesterov (lr \($0.learningRate), momentum \($0.momentum))" } ?? ", parameter average")
            + (options.overlap ? ", overlapped with the next \(lagSteps) local steps" : "")
    }

    func reduction(forStep step: Int) -> GradientReduction {
        let synchronous = step < options.warmupSteps
        local.acrossNodes(synchronous)
        return synchronous ? global : local
    }

    var nodeAgreement: Communicator? { local.node }

    // Between rounds nothing crosses the nodes but an overlapped round's sum: a world agreement would cost a round
    // trip per step, queued behind that sum's bytes. The synchronous steps agree over all ranks, as they reduce.
    func agreesAcrossNodes(afterStep step: Int, force: Bool) -> Bool {
        force || step + 1 <= options.warmupSteps || stepsIntoRound(afterStep: step) == 0
    }

    /// The local steps taken since the last round boundary once step `step` is done (0 at a boundary).
    private func stepsIntoRound(afterStep step: Int) -> Int { (step + 1 - options.warmupSteps) % options.every }

    func afterStep(_ step: Int, force: Bool) throws {
        let done = step + 1
        if done <= options.warmupSteps {
            // The nodes hold the same parameters already; the outer optimizer's rounds start from them.
            if done == options.warmupSteps || force { copySliceToAnchor() }
            return
        }
        let intoRound = stepsIntoRound(afterStep: step), due = intoRound == 0
        guard options.overlap else {
            if force || due { try synchronize() }
            return
        }
        if roundInFlight { try ring!.test() }
        let lagged = intoRound == lagSteps % options.every
        if force || due || lagged { try completeRound() }
        if force { try synchronize() } else if due { try startRound() }
    }

    /// The nodes' mean parameters, or the outer step from the mean change, on every node (blocking).
    func synchronize() throws {
        let slice = global.updateRange, nodes = Float(crossNode.size)
        let parameters = network.parameters.baseAddress! + slice.lowerBound
        guard let outer = options.outer else {
            try crossNode.allreduceSum(parameters, count: slice.count, of: .float)
            scale(parameters, count: slice.count, by: 1 / nodes)
            try global.publish()
            return
        }
        takeChange(parameters, count: slice.count)
        try crossNode.allreduceSum(message)
        outerStep(outer, count: slice.count)
        parameters.update(from: anchor.baseAddress!, count: slice.count)
        try global.publish()
    }

    /// m = a − x, the change of this node since the anchor (outer only).
    private func takeChange(_ parameters: UnsafeMutablePointer<Float>, count: Int) {
        let (anchor, message) = (anchor.baseAddress!, message.baseAddress!)
        for i in 0..<count { message[i] = anchor[i] - parameters[i] }
    }

    /// Δ = m / nodes (the sum of the changes in `message`); b = μ·b + Δ; a −= lr·(Δ + μ·b) (PyTorch's Nesterov SGD).
    private func outerStep(_ outer: OuterOptimizerOptions, count: Int) {
        let (anchor, message, outerMomentum) = (anchor.baseAddress!, message.baseAddress!, outerMomentum.baseAddress!)
        let momentum = outer.momentum, rate = outer.learningRate, nodes = Float(crossNode.size)
        for i in 0..<count {
            let delta = message[i] / nodes
            outerMomentum[i] = momentum * outerMomentum[i] + delta
            anchor[i] -= rate * (delta + momentum * outerMomentum[i])
        }
    }

    /// Overlap: this node's message of the round that ends now goes out; training goes on from the same parameters (s).
    private func startRound() throws {
        let slice = global.updateRange
        let parameters = network.parameters.baseAddress! + slice.lowerBound
        roundStart.baseAddress!.update(from: parameters, count: slice.count)
        guard options.outer != nil else {
            message.baseAddress!.update(from: parameters, count: slice.count)
            try ring!.start(message.baseAddress!, count: slice.count, of: .float)
            roundInFlight = true
            return
        }
        takeChange(parameters, count: slice.count)
        convertToBFloat16(message.baseAddress!, wire.baseAddress!, count: slice.count)
        try ring!.start(wire.baseAddress!, count: slice.count, of: .bfloat16)
        roundInFlight = true
    }

    /// Overlap: waits for the round in flight (if any), then x ← c + (x − s) with c the new common parameters.
    private func completeRound() throws {
        guard roundInFlight else { return }
        try ring!.wait()
        roundInFlight = false
        let slice = global.updateRange, count = slice.count
        let parameters = network.parameters.baseAddress! + slice.lowerBound
        let (start, message) = (roundStart.baseAddress!, message.baseAddress!)
        if let outer = options.outer {
            convertFromBFloat16(wire.baseAddress!, message, count: count)
            outerStep(outer, count: count)
            let anchor = anchor.baseAddress!
            for i in 0..<count { parameters[i] = anchor[i] + (parameters[i] - start[i]) }
        } else {
            let share = 1 / Float(crossNode.size)
            for i in 0..<count { parameters[i] = message[i] * share + (parameters[i] - start[i]) }
        }
        try global.publish()
    }

    private func copySliceToAnchor() {
        guard options.outer != nil else { return }
        let slice = global.updateRange
        for i in 0..<slice.count { anchor[i] = network.parameters[slice.lowerBound + i] }
    }

    // Checkpoints are synchronization points, so the parameters are the anchor then and no round is in flight; what
    // else is kept: every node's optimizer state (they differ), and the outer momentum.
    func checkpointState(optimizer: Optimizer) throws -> [TensorRecord] {
        precondition(!roundInFlight, "PeriodicSync: a checkpoint with a round in flight")
        var records = try global.checkpointState(optimizer: optimizer)
        let isRoot = crossNode.rank == 0 && local.node.rank == 0
        try optimizer.withMutableState { first, second, _ in
            for (name, state) in [("first_moment", first), ("second_moment", second)] where !state.isEmpty {
                var received = [Float](repeating: 0, count: state.count)
                for other in 1..<crossNode.size {
                    try received.withUnsafeMutableBytes { bytes in
                        if crossNode.rank == other { bytes.copyMemory(from: UnsafeRawBufferPointer(state)) }
                        try crossNode.broadcast(bytes, root: other)
                    }
                    if isRoot { records.append(TensorRecord(name: "sync.node\(other).\(name)", shape: [state.count], values: received)) }
                }
            }
        }
        if options.outer != nil {
            records += try gatherSlices([("sync.anchor", Array(anchor)), ("sync.outer_momentum", Array(outerMomentum))], isRoot: isRoot)
        }
        return records
    }

    /// The node's ranks' slices of `arrays`, whole on rank 0 (each slice broadcast from its rank within the node).
    private func gatherSlices(_ arrays: [(String, [Float])], isRoot: Bool) throws -> [TensorRecord] {
        let node = local.node, count = network.parameterCount
        return try arrays.map { name, values in
            var whole = [Float](repeating: 0, count: count)
            for rank in 0..<node.size {
                let slice = node.size == 1 ? 0..<count : NodeSharedReduction.slice(rank, of: node.size, count: count)
                if rank == node.rank { whole.replaceSubrange(slice, with: values) }
                try whole.withUnsafeMutableBufferPointer {
                    try node.broadcast(UnsafeMutableRawBufferPointer(UnsafeMutableBufferPointer(rebasing: $0[slice])), root: rank)
                }
            }
            return TensorRecord(name: name, shape: [count], values: isRoot ? whole : [])
        }
    }

    /// Resuming: rank 0's `state` (a checkpoint's `sync.*` tensors) sent to the nodes they belong to. A checkpoint of
    /// every-step training has none: every node starts from rank 0's state then.
    private func restore(_ state: [TensorRecord], optimizer: Optimizer, communicator: Communicator) throws {
        var nodesSaved = Int64(state.contains { $0.name.hasPrefix("sync.node") } ? 1 + Set(state.compactMap {
            $0.name.hasPrefix("sync.node") ? $0.name.split(separator: ".")[1] : nil }).count : 0)
        try withUnsafeMutableBytes(of: &nodesSaved) { try communicator.broadcast($0, root: 0) }
        if nodesSaved != 0 && nodesSaved != Int64(crossNode.size) {
            throw AgreedUserError("--resume: the checkpoint holds the optimizer states of \(nodesSaved) nodes and this run has "
                + "\(crossNode.size); distributed.sync_every \(options.every) resumes on the same number of nodes")
        }
        guard nodesSaved != 0 else { return }
        try optimizer.withMutableState { first, second, _ in
            for (name, own) in [("first_moment", first), ("second_moment", second)] where !own.isEmpty {
                for other in 1..<crossNode.size {
                    var values = state.first { $0.name == "sync.node\(other).\(name)" }?.values ?? []
                    if values.count != own.count { values = [Float](repeating: 0, count: own.count) }
                    try values.withUnsafeMutableBytes { try communicator.broadcast($0, root: 0) }
                    if crossNode.rank == other { _ = own.update(fromContentsOf: values) }
                }
            }
        }
        guard options.outer != nil else { return }
        let slice = global.updateRange
        for (name, keep) in [("sync.anchor", true), ("sync.outer_momentum", false)] {
            var values = state.first { $0.name == name }?.values ?? []
            if values.count != network.parameterCount { values = Array(network.parameters) }
            try values.withUnsafeMutableBytes { try communicator.broadcast($0, root: 0) }
            _ = (keep ? anchor : outerMomentum).update(fromContentsOf: values[slice])
        }
    }
}

/// A node's share of each global batch, reduced within the node only: the local steps of periodic synchronization.
/// The gradient is the mean over the node's rows. While `background` (an overlapped round's sum between nodes) is in
/// flight, back-propagation advances it after each layer.
final class NodeLocalReduction: GradientReduction, BackwardListener {
    let inner: GradientReduction
    let node: Communicator
    let crossNode: Communicator
    /// The ring sum of an overlapped round, advanced between layers while it is in flight.
    var background: RingSum?
    /// The first error of advancing it inside back-propagation (which cannot throw), thrown by `finish`.
    private var failure: Error?

    init(inner: GradientReduction, node: Communicator, crossNode: Communicator) {
        (self.inner, self.node, self.crossNode) = (inner, node, crossNode)
    }

    /// Whether the node's shared-memory reduction also sums between nodes (the synchronous steps).
    func acrossNodes(_ value: Bool) { (inner as? NodeSharedReduction)?.acrossNodes = value }

    func localRows(ofBatch count: Int) -> Range<Int> {
        let share = meanRows(ofBatch: count)
        let nodeStart = chunkRange(crossNode.rank, of: crossNode.size, total: count).lowerBound
        let mine = chunkRange(node.rank, of: node.size, total: share)
        return nodeStart + mine.lowerBound..<nodeStart + mine.upperBound
    }

    func meanRows(ofBatch count: Int) -> Int { chunkRange(crossNode.rank, of: crossNode.size, total: count).count }

    func rowCapacity(batchSize: Int) -> Int {
        chunkRange(0, of: node.size, total: chunkRange(0, of: crossNode.size, total: batchSize).count).count
    }

    // The plain allreduce within a node listens to no layer, so back-propagation can report each layer here (the same
    // gradients as without a listener); a shared-memory node's reduction listens itself, and the ring advances after.
    func backward(_ pass: BackwardPass) -> Bool {
        guard let background, background.inFlight, inner is FloatAllreduce else {
            let summable = inner.backward(pass)
            advanceBackground()
            return summable
        }
        pass.run(0..<pass.rows, listener: self)
        return true
    }

    func parameterGradientsReady(of network: Network, layer index: Int) { advanceBackground() }

    private func advanceBackground() {
        guard failure == nil, let background, background.inFlight else { return }
        do { try background.test() } catch { failure = error }
    }

    func finish() throws {
        if let failure {
            self.failure = nil
            throw failure
        }
        try inner.finish()
        if let background, background.inFlight { try background.test() }
    }

    var reducedGradients: UnsafeMutablePointer<Float> { inner.reducedGradients }
    func updateGradients(scaledBy scale: Float?) -> GradientSource { inner.updateGradients(scaledBy: scale) }
    func gradientNorm(threads: Int) throws -> Double { try inner.gradientNorm(threads: threads) }
    var updateRange: Range<Int> { inner.updateRange }
    func publish() throws { try inner.publish() }
    func checkpointState(optimizer: Optimizer) throws -> [TensorRecord] { try inner.checkpointState(optimizer: optimizer) }
}
