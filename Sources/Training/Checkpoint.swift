import Config
import DataParallel
import Datasets
import Formats
import Foundation
import Kernels
import NeuralNet
import Observe
import Support

/// Where training stands between two steps: enough to continue exactly.
struct TrainingPosition: Codable, Equatable {
    /// The epoch in progress (0-based) and the next batch of it to run.
    var epoch = 0
    var batchIndex = 0
    /// Optimizer steps taken (the schedule's position).
    var step = 0
    /// Sum of per-sample training losses so far in this epoch (all ranks).
    var epochLossSum = 0.0
    /// Training samples processed and seconds spent training, over the whole run.
    var trainedSamples = 0
    var trainingSeconds = 0.0
    /// Seconds since the first training step, evaluations included (nil in checkpoints older than the field).
    var trainSeconds: Double?
    /// The best validation epoch so far and early stopping's count (nil without validation data).
    var earlyStopping: EarlyStoppingState?

    enum CodingKeys: String, CodingKey {
        case epoch, batchIndex = "batch_index", step, epochLossSum = "epoch_loss_sum", trainedSamples = "trained_samples"
        case trainingSeconds = "training_seconds", trainSeconds = "train_seconds", earlyStopping = "early_stopping"
    }

    init() {}

    /// The step, samples and seconds trained so far, as the run recorder reads them.
    var progress: TrainingProgress {
        TrainingProgress(step: step, trainedSamples: trainedSamples, trainingSeconds: trainingSeconds)
    }

    /// The position as one JSON object (checkpoint metadata, broadcast on resume).
    var json: String { JSON.text(self) }

    /// Reads `json`; checkpoints written before positions were JSON hold six comma-separated numbers instead.
    init(json: String) throws {
        if let value = try? JSONDecoder().decode(TrainingPosition.self, from: Data(json.utf8)) {
            self = value
            return
        }
        let values = json.split(separator: ",").compactMap { Double($0) }
        guard values.count == 6 else { throw UserError("corrupt training position \(quotedForMessage(json))") }
        epoch = Int(values[0]); batchIndex = Int(values[1]); step = Int(values[2])
        epochLossSum = values[3]; trainedSamples = Int(values[4]); trainingSeconds = values[5]
    }
}

/// Resumable checkpoints under RUN_DIR/checkpoints/: weights and biases (PyTorch layout), optimizer state,
/// position and resolved config in one safetensors file, with a SHA-256 of all tensor data verified on load.
enum Checkpoint {
    /// A checkpoint read back and verified.
    struct Loaded {
        var path: String
        var tensors: [TensorRecord]
        var metadata: [String: String]
        var position: TrainingPosition
        var optimizerSteps: Int
        var firstMoment: [Float]
        var secondMoment: [Float]
    }

    /// Writes a checkpoint atomically (temporary file, fsync, rename), then deletes all but the newest `keep`.
    /// On failure the previous checkpoints are untouched and a UserError names the path.
    @discardableResult
    static func write(network: Network, optimizer: Optimizer, reductionState: [TensorRecord] = [],
                             position: TrainingPosition, config: TrainingConfig,
                             normalization: NormalizationRecord, files: RunDirectory, keep: Int) throws -> String {
        try files.createCheckpointFolder()
        var tensors = ModelFile.tensors(of: network)
        if !optimizer.firstMoment.isEmpty {
            tensors.append(TensorRecord(name: "optimizer.first_moment", shape: [optimizer.firstMoment.count], values: optimizer.firstMoment))
        }
        if !optimizer.secondMoment.isEmpty {
            tensors.append(TensorRecord(name: "optimizer.second_moment", shape: [optimizer.secondMoment.count], values: optimizer.secondMoment))
        }
        tensors += reductionState
        var metadata = ModelFile.metadata(network: network, config: config, normalization: normalization)
        metadata["plexus.position"] = position.json
        metadata["plexus.optimizer_steps"] = String(optimizer.stepCount)
        metadata["plexus.kernel"] = config.training.precision.kernelName(KernelVariant.active)
        metadata["plexus.checksum"] = SafeTensors.sha256OfValues(tensors)
        let path = files.checkpoint(step: position.step)
        try SafeTensors.write(tensors, metadata: metadata, to: path)
        for old in checkpointFiles(in: files).dropLast(keep) {
            try? FileManager.default.removeItem(atPath: old)
        }
        return path
    }

    /// Checkpoint files of a run directory, oldest first (by step, from the name).
    static func checkpointFiles(in files: RunDirectory) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: files[.checkpoints])) ?? []
        return names.filter(RunDirectory.isCheckpointName).sorted().map { (files[.checkpoints] as NSString).appendingPathComponent($0) }
    }

    /// Reads and verifies one checkpoint (structure, checksum, position); throws UserError if it is not valid.
    static func read(path: String) throws -> Loaded {
        let (tensors, metadata) = try SafeTensors.read(path: path)
        guard let checksum = metadata["plexus.checksum"] else {
            throw UserError("\(path): not a plexus checkpoint (no plexus.checksum)")
        }
        guard SafeTensors.sha256OfValues(tensors) == checksum else {
            throw UserError("\(path): checksum mismatch (corrupt checkpoint)")
        }
        guard let position = try? TrainingPosition(json: metadata["plexus.position"] ?? ""),
              let steps = metadata["plexus.optimizer_steps"].flatMap({ Int($0) }) else {
            throw UserError("\(path): corrupt checkpoint metadata (plexus.position)")
        }
        return Loaded(path: path, tensors: tensors, metadata: metadata, position: position, optimizerSteps: steps,
                      firstMoment: tensors.first { $0.name == "optimizer.first_moment" }?.values ?? [],
                      secondMoment: tensors.first { $0.name == "optimizer.second_moment" }?.values ?? [])
    }

    /// The newest checkpoint of a run directory that reads back and verifies; `skipped` lists the ones that did not.
    static func newestValid(in files: RunDirectory) -> (loaded: Loaded?, skipped: [String]) {
        var skipped: [String] = []
        for path in checkpointFiles(in: files).reversed() {
            do {
                return (try read(path: path), skipped)
            } catch {
                skipped.append(String(describing: error))
            }
        }
        return (nil, skipped)
    }
}
