@testable import DataParallel
@testable import Distributed
import Config
@testable import Formats
import Foundation
import NeuralNet
import Support
@testable import Training
import XCTest

/// Periodic synchronization on two simulated nodes (two ranks with `distributed.shared_memory: false`): under mpirun
/// as on threads, its rounds average the nodes' local parameters (or step the outer optimizer), `sync_every: 1` is
/// today's every-step training, and a resume from a checkpoint between rounds ends with the uninterrupted run's bits.
extension InProcessTrainingTests {
    private var twoNodes: [String] { ["distributed.shared_memory=false", "training.epochs=2"] }

    func testPeriodicSyncUnderMPIAsOnThreadsAndEveryStepUnchanged() throws {
        let periodic = try mpirun("sync4", ranks: 2, twoNodes + ["distributed.sync_every=4"])
        XCTAssertTrue(periodic.output.contains("periodic synchronization: every 4 steps between 2 nodes"), periodic.output)
        XCTAssertEqual(try threads("sync4", ranks: 2, twoNodes + ["distributed.sync_every=4"]).weights, periodic.weights)
        let outer = twoNodes + ["distributed.sync_every=4", "distributed.outer_optimizer={name: nesterov, lr: 0.7, momentum: 0.9}"]
        XCTAssertEqual(try threads("sync4-outer", ranks: 2, outer).weights, try mpirun("sync4-outer", ranks: 2, outer).weights,
                       "the outer optimizer's overlapped rounds under mpirun as on threads")
        let everyStep = try mpirun("sync1", ranks: 2, twoNodes + ["distributed.sync_every=1"])
        XCTAssertEqual(everyStep.weights, try mpirun("default", ranks: 2, twoNodes).weights, "sync_every 1 is every-step training")
        XCTAssertNotEqual(everyStep.weights, periodic.weights, "local steps change the result")
    }

    /// Checkpoints every 5 steps fall between rounds of 4 (each is a synchronization point); resuming from the one
    /// after step 15 ends with the uninterrupted run's weights, for the average and the outer optimizer overlapped with
    /// the next round (the default) and for the outer optimizer blocking.
    func testResumeBetweenRoundsIsExact() throws {
        let outer = "distributed.outer_optimizer={name: nesterov, lr: 0.7, momentum: 0.9}"
        for (name, extra) in [("average", [String]()), ("outer", [outer]), ("outer-blocking", [outer, "distributed.sync_overlap=false"])] {
            let overrides = twoNodes + ["distributed.sync_every=4", "checkpoint.every_steps=5", "checkpoint.keep=10"] + extra
            let whole = try threads("resume-\(name)", ranks: 2, overrides)
            let run = path("threads-resume-\(name)-2x1"), copy = path("resumed-\(name)")
            try FileManager.default.copyItem(atPath: run, toPath: copy)
            let checkpoints = Checkpoint.checkpointFiles(in: RunDirectory(copy))
            XCTAssertGreaterThan(checkpoints.count, 3)
            for later in checkpoints.dropFirst(3) { try FileManager.default.removeItem(atPath: later) }
            XCTAssertTrue(try SafeTensors.read(path: checkpoints[2]).tensors.contains { $0.name == "sync.node1.first_moment" })
            defer { for number in [SIGUSR1, SIGTERM, SIGINT] { signal(number, SIG_DFL) } }
            let config = self.config
            for result in InProcessWorld.run(ranks: 2, ranksPerNode: 1, timeoutSeconds: 120, { world in
                try Commands.train(configPath: config, runDirectory: copy, overrides: overrides, progressMode: .plain,
                                   resume: true, communicator: world)
            }) { try result.get() }
            let resumed = try results(copy).weights
            let firstDifference = resumed.indices.first { $0 >= whole.weights.count || resumed[$0] != whole.weights[$0] }
            XCTAssertTrue(resumed == whole.weights, "\(name): the resumed weights differ at \(String(describing: firstDifference))")
        }
    }

    /// After two local steps on different rows the nodes differ; a round leaves each node with their mean, and the
    /// outer optimizer with anchor − lr·(Δ + μ·Δ), Δ the mean change (its first step, momentum buffer = Δ).
    func testRoundAveragesTheNodesLocalParameters() throws {
        for outer in [nil, OuterOptimizerOptions(learningRate: 0.7, momentum: 0.9)] {
            let config = try TrainingConfig.load(path: self.config, overrides: ["distributed.shared_memory=false"])
            var local: [[Float]] = [[], []], after: [[Float]] = [[], []], start: [Float] = []
            let lock = NSLock()
            for result in InProcessWorld.run(ranks: 2, ranksPerNode: 1, timeoutSeconds: 60, { world in
                let setup = try TrainingSetup(config: config, communicator: world)
                let reduction = try makeGradientReduction(config.reductionOptions, network: setup.network, communicator: world,
                                                          threads: 1)
                let sync = try makeSynchronization(SyncOptions(every: 100, warmupSteps: 0, outer: outer, sharedMemory: false),
                                                   reduction: reduction, network: setup.network, optimizer: setup.optimizer,
                                                   communicator: world)
                let step = TrainingStep(network: setup.network, optimizer: setup.optimizer, schedule: setup.schedule,
                                        loss: config.loss, rows: setup.train, reduction: reduction, communicator: world,
                                        options: config.stepOptions(threads: 1), synchronization: sync)
                let initial = Array(setup.network.parameters)
                for index in 0..<2 { _ = try step.run(batchIndex: index, of: setup.epochOrder(0), step: index) }
                let mine = Array(setup.network.parameters)
                try sync.afterStep(1, force: true)
                lock.lock(); defer { lock.unlock() }
                local[world.rank] = mine
                after[world.rank] = Array(setup.network.parameters)
                start = initial
            }) { try result.get() }
            XCTAssertNotEqual(local[0], local[1], "local steps on each node's own rows")
            XCTAssertEqual(after[0], after[1], "every node holds the same parameters after a round")
            for i in 0..<start.count {
                guard let outer else {
                    XCTAssertEqual(after[0][i], (local[0][i] + local[1][i]) / 2)
                    continue
                }
                let delta = ((Double(start[i]) - Double(local[0][i])) + (Double(start[i]) - Double(local[1][i]))) / 2
                let expected = Double(start[i]) - Double(outer.learningRate) * (delta + Double(outer.momentum) * delta)
                XCTAssertEqual(Double(after[0][i]), expected, accuracy: 1e-5)
            }
        }
    }

    /// Overlapped rounds of 2 steps: the round started after step 2 is in flight during step 3, and the
    /// synchronization after step 3 (forced, and the outer optimizer's lag of one step) completes it (x ← c + (x − s))
    /// and then synchronizes blocking. Every node ends with
    /// the parameters a written-out reference computes from each node's parameters before each synchronization.
    func testOverlappedRoundThenForcedSynchronizationMatchesReference() throws {
        for outer in [nil, OuterOptimizerOptions(learningRate: 0.7, momentum: 0.9)] {
            let config = try TrainingConfig.load(path: self.config, overrides: ["distributed.shared_memory=false"])
            var before: [[[Float]]] = [[], []], after: [[Float]] = [[], []], initial: [Float] = []
            var described = ""
            let lock = NSLock()
            for result in InProcessWorld.run(ranks: 2, ranksPerNode: 1, timeoutSeconds: 60, { world in
                let setup = try TrainingSetup(config: config, communicator: world)
                let reduction = try makeGradientReduction(config.reductionOptions, network: setup.network, communicator: world,
                                                          threads: 1)
                let periodic = try makeSynchronization(SyncOptions(every: 2, warmupSteps: 0, outer: outer, sharedMemory: false,
                                                                   overlap: true),
                                                       reduction: reduction, network: setup.network, optimizer: setup.optimizer,
                                                       communicator: world)
                let sync = ParametersBeforeSync(periodic, network: setup.network)
                let step = TrainingStep(network: setup.network, optimizer: setup.optimizer, schedule: setup.schedule,
                                        loss: config.loss, rows: setup.train, reduction: reduction, communicator: world,
                                        options: config.stepOptions(threads: 1), synchronization: sync)
                let start = Array(setup.network.parameters)
                for index in 0..<2 { _ = try step.run(batchIndex: index, of: setup.epochOrder(0), step: index) }
                XCTAssertEqual((periodic as? PeriodicSync)?.roundInFlight, true, "the round after step 2 is in flight")
                _ = try step.run(batchIndex: 2, of: setup.epochOrder(0), step: 2)
                try sync.afterStep(2, force: true)
                XCTAssertEqual((periodic as? PeriodicSync)?.roundInFlight, false, "a forced synchronization leaves nothing in flight")
                lock.lock(); defer { lock.unlock() }
                (before[world.rank], after[world.rank]) = (sync.before, Array(setup.network.parameters))
                (initial, described) = (start, "\(periodic)")
            }) { try result.get() }
            XCTAssertTrue(described.contains("overlapped with the next"), described)
            XCTAssertNotEqual(before[0][1], before[0][2], "a local step while the round is in flight")
            XCTAssertEqual(after[0], after[1], "every node holds the same parameters after a forced synchronization")
            for i in 0..<initial.count {
                // x₁: each node's parameters at the round boundary after step 2, x₂ after step 3 (the forced one).
                let x1 = (0..<2).map { Double(before[$0][1][i]) }, x2 = (0..<2).map { Double(before[$0][2][i]) }
                let expected: Double
                if let outer {
                    // The overlapped change goes out in bfloat16: Δ₁ = bf16(bf16(a₀ − x₁) + bf16(a₀ − x₁′)) / 2, b₁ = Δ₁,
                    // a₁ = a₀ − lr·(Δ₁ + μ·b₁); each node carries its progress onto a₁, y = a₁ + (x₂ − x₁); the forced
                    // round (float): Δ₂ = mean(a₁ − y), b₂ = μ·b₁ + Δ₂, a₂ = a₁ − lr·(Δ₂ + μ·b₂).
                    let (rate, momentum) = (Double(outer.learningRate), Double(outer.momentum))
                    let a0 = Double(initial[i])
                    let changes = (0..<2).map { roundedToBFloat16(initial[i] - before[$0][1][i]) }
                    let delta1 = Double(roundedToBFloat16(changes[0] + changes[1])) / 2
                    let a1 = a0 - rate * (delta1 + momentum * delta1)
                    let carried = (0..<2).map { a1 + (x2[$0] - x1[$0]) }
                    let delta2 = ((a1 - carried[0]) + (a1 - carried[1])) / 2
                    let b2 = momentum * delta1 + delta2
                    expected = a1 - rate * (delta2 + momentum * b2)
                } else {
                    let mean = (x1[0] + x1[1]) / 2
                    expected = ((mean + x2[0] - x1[0]) + (mean + x2[1] - x1[1])) / 2
                }
                // Float arithmetic on parameters below 1 errs by about 1e-7; a change sent unrounded would miss by more.
                XCTAssertEqual(Double(after[0][i]), expected, accuracy: 1e-6, "parameter \(i), outer \(outer != nil)")
            }
        }
    }
}

/// `value` rounded to bfloat16's 8 significant bits, to nearest, ties to even (finite values).
private func roundedToBFloat16(_ value: Float) -> Float {
    let bits = value.bitPattern
    return Float(bitPattern: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) & 0xFFFF_0000)
}

/// A synchronization that records the parameters before each `afterStep` of the one it wraps.
private final class ParametersBeforeSync: Synchronization {
    let inner: Synchronization
    let network: Network
    var before: [[Float]] = []

    init(_ inner: Synchronization, network: Network) { (self.inner, self.network) = (inner, network) }

    func reduction(forStep step: Int) -> GradientReduction { inner.reduction(forStep: step) }
    func afterStep(_ step: Int, force: Bool) throws {
        if !force { before.append(Array(network.parameters)) }
        try inner.afterStep(step, force: force)
    }
    func checkpointState(optimizer: Optimizer) throws -> [TensorRecord] { try inner.checkpointState(optimizer: optimizer) }
    var nodeAgreement: Communicator? { inner.nodeAgreement }
    func agreesAcrossNodes(afterStep step: Int, force: Bool) -> Bool { inner.agreesAcrossNodes(afterStep: step, force: force) }
}
