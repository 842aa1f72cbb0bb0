import Config
import DataParallel
import Dispatch
import Observe
import Support

/// When a run saves a checkpoint: every `checkpoint.every_steps` steps, every `every_seconds` by rank 0's clock
/// (the ranks agree within the step), every `every_epochs` epochs and after the last one; a step- or time-checkpoint
/// due on an epoch's last step is saved at the epoch's end instead, after its evaluation.
final class CheckpointPolicy {
    let settings: TrainingConfig.CheckpointSection
    let epochs: Int
    let isRoot: Bool
    let writer: CheckpointWriter
    /// When the last checkpoint was written (or training started): `every_seconds` counts from here.
    private var lastWrite = DispatchTime.now()
    /// A time checkpoint fell on an epoch's last step: save it at the epoch's end.
    private var dueAtEpochEnd = false

    init(_ settings: TrainingConfig.CheckpointSection, epochs: Int, isRoot: Bool, writer: CheckpointWriter) {
        (self.settings, self.epochs, self.isRoot, self.writer) = (settings, epochs, isRoot, writer)
    }

    /// Training starts now: `every_seconds` counts from here.
    func restartClock() { lastWrite = DispatchTime.now() }

    /// Whether rank 0's clock says `every_seconds` have passed (false on the other ranks and without the key).
    var timeDue: Bool {
        guard isRoot, let seconds = settings.everySeconds else { return false }
        return Double(DispatchTime.now().uptimeNanoseconds - lastWrite.uptimeNanoseconds) * 1e-9 >= seconds
    }

    /// Whether `every_steps` saves a checkpoint once `steps` steps are done.
    func dueByStep(after steps: Int) -> Bool { settings.everySteps.map { steps % $0 == 0 } ?? false }

    /// After a step that left the run at `position`.
    func afterStep(_ outcome: TrainingStep.Outcome, at position: TrainingPosition, lastOfEpoch: Bool) throws {
        let byStep = dueByStep(after: position.step)
        guard byStep || outcome.checkpointRequested else { return }
        if lastOfEpoch {
            dueAtEpochEnd = dueAtEpochEnd || outcome.checkpointRequested
        } else {
            try save(position)
        }
    }

    /// After an epoch's end (its evaluation and early-stopping decision) left the run at `position`.
    func afterEpoch(at position: TrainingPosition) throws {
        let byEpoch = settings.everyEpochs.map {
            position.epoch % $0 == 0 || position.epoch == epochs || position.earlyStopping?.stopped == true
        } ?? false
        guard byEpoch || dueAtEpochEnd else { return }
        try save(position)
        dueAtEpochEnd = false
    }

    /// Saves a checkpoint of `position` now (every rank calls it at the same step); rank 0 returns its path.
    @discardableResult
    func save(_ position: TrainingPosition) throws -> String? {
        // The clock restarts when the write is done: a save slower than `every_seconds` (a busy file system) must
        // not make every following step save again.
        defer { lastWrite = DispatchTime.now() }
        return try writer.write(position, keep: settings.keep)
    }
}

/// Writes one checkpoint: the reduction's and synchronization's state gathered on rank 0, and the balance of batch
/// shares, which rank 0 writes to the file (a timeline span).
struct CheckpointWriter {
    let setup: TrainingSetup
    let synchronization: Synchronization
    let balance: ShareBalance?
    let recorder: RunRecorder
    let files: RunDirectory

    /// Every rank calls it; rank 0 writes and returns the checkpoint's path, keeping the newest `keep`.
    func write(_ position: TrainingPosition, keep: Int) throws -> String? {
        let reductionState = try synchronization.checkpointState(optimizer: setup.optimizer) + (balance?.checkpointState ?? [])
        return try recorder.span(.checkpoint, step: position.step) {
            guard setup.communicator.rank == 0 else { return nil }
            return try Checkpoint.write(network: setup.network, optimizer: setup.optimizer, reductionState: reductionState,
                                        position: position, config: setup.config,
                                        normalization: setup.train.normalizationRecord, files: files, keep: keep)
        }
    }
}
