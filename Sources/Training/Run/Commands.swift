import Distributed
import Foundation
import Kernels
import NeuralNet

/// The `plexus` subcommands as library calls; the executable parses arguments and turns errors into exit statuses.
public enum Commands {
    /// `plexus train` on every rank of `communicator`: loads the config, trains, writes the run directory.
    public static func train(configPath: String, runDirectory: String?, overrides: [String], progressMode: ProgressMode = .auto,
                             resume: Bool = false, communicator: Communicator, startTime: Date = Date()) throws {
        var config: TrainingConfig?
        try collectively(communicator) { config = try TrainingConfig.load(path: configPath, overrides: overrides) }
        if resume && runDirectory == nil {
            throw AgreedUserError("--resume needs --run-dir DIR (the run to continue)")
        }
        // Rank 0 names the default run directory (its clock decides), every rank uses it.
        let directory = try communicator.broadcast(
            runDirectory ?? (communicator.rank == 0 ? defaultRunDirectory(configPath: configPath) : ""), root: 0)
        // One writer per run directory: rank 0 holds its lock until the process ends; a second train stops here.
        var lock: RunDirectoryLock?
        try collectively(communicator) {
            if communicator.rank == 0 { lock = try RunDirectoryLock(runDirectory: directory) }
        }
        let setup: TrainingSetup
        do {
            setup = try TrainingSetup(config: config!, communicator: communicator, resumingFrom: resume ? directory : nil)
        } catch {
            lock?.discardIfUnused()
            throw error
        }
        try collectively(communicator) {
            if communicator.rank == 0 { try Trainer.createRunDirectory(directory, config: config!) }
        }
        try withExtendedLifetime(lock) {
            _ = try Trainer(setup: setup, runDirectory: directory, progressMode: progressMode, startTime: startTime).run()
        }
    }

    static func defaultRunDirectory(configPath: String) -> String {
        let name = ((configPath as NSString).lastPathComponent as NSString).deletingPathExtension
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        formatter.locale = Locale(identifier: "en_US_POSIX")
        return "runs/\(name)-\(formatter.string(from: Date()))"
    }

    /// The model file to use for a run directory: best.safetensors (the best validation epoch's weights), else the
    /// newest checkpoint, else final.safetensors; a file is itself. `choice` says which, for a run directory.
    public static func modelPath(for location: String) throws -> (path: String, choice: String?) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: location, isDirectory: &isDirectory) else {
            throw UserError("\(location): no such file or directory")
        }
        guard isDirectory.boolValue else { return (location, nil) }
        let best = (location as NSString).appendingPathComponent(Trainer.bestWeightsName)
        if FileManager.default.fileExists(atPath: best) { return (best, "the best validation epoch's weights") }
        // The newest checkpoint that verifies (so a crash mid-write never serves a torn file), else the final weights.
        let (newest, skipped) = Checkpoint.newestValid(in: location)
        for reason in skipped { FileHandle.standardError.write(Data("plexus: warning: skipping \(reason)\n".utf8)) }
        if let newest { return (newest.path, "the newest checkpoint") }
        let final = (location as NSString).appendingPathComponent("final.safetensors")
        guard FileManager.default.fileExists(atPath: final) else {
            throw UserError("\(location): no valid checkpoint and no final.safetensors in this run directory")
        }
        return (final, "the final weights")
    }

    /// Says on stderr which file of a run directory a command used (stdout stays the command's output).
    static func reportModelChoice(path: String, choice: String?) {
        guard let choice else { return }
        FileHandle.standardError.write(Data("plexus: used \(path) (\(choice))\n".utf8))
    }

    /// A saved model with the task its loss and outputs define.
    static func loadModel(_ location: String) throws -> (path: String, choice: String?, saved: ModelFile.Saved, task: LearningTask) {
        let (path, choice) = try modelPath(for: location)
        let saved = try ModelFile.read(path: path, threads: availableCPUCount())
        return (path, choice, saved, try LearningTask(loss: saved.loss.kind, outputWidth: saved.network.outputWidth,
                                                      targetCount: saved.normalization.targetNames.count))
    }

    /// `dataset` normalized as the model's training data was, after checking its width fits the model.
    static func prepare(_ dataset: Dataset, for saved: ModelFile.Saved, source: String, what: String) throws -> Dataset {
        try dataset.applyNormalization(saved.normalization)
        if dataset.featureCount != saved.network.inputWidth {
            throw UserError("\(source): \(dataset.featureCount) \(what), the model takes \(saved.network.inputWidth)")
        }
        return dataset
    }

    /// What `plexus evaluate` prints: the model, the data, the task's metrics on it and, for several targets, each
    /// target's metrics under `per_target`.
    struct EvaluationReport: Encodable {
        let model: String
        let data: String
        let samples: Int
        let metrics: MetricValues
        let perTarget: [(name: String, metrics: MetricValues)]

        func encode(to encoder: Encoder) throws {
            try encoder.encodeObject(["model": model, "data": data, "samples": samples], metrics: metrics)
            guard !perTarget.isEmpty else { return }
            var container = encoder.container(keyedBy: NamedKey.self)
            var targets = container.nestedContainer(keyedBy: NamedKey.self, forKey: NamedKey("per_target"))
            for (name, values) in perTarget { try values.encode(to: targets.superEncoder(forKey: NamedKey(name))) }
        }
    }

    /// The data at `location` in `format` (default: by its name, IDX prefix, CSV or .npz) with the model's targets.
    static func loadData(_ location: String, format: TrainingConfig.DataSection.Format? = nil, for saved: ModelFile.Saved,
                         requireTargets: Bool) throws -> Dataset {
        try Dataset.load(location, format: format ?? .init(impliedBy: location), targets: saved.normalization.targetNames,
                         requireTargets: requireTargets)
    }

    /// `plexus evaluate`: the task's metrics of a saved model on a dataset (per target too), as a JSON object.
    public static func evaluate(location: String, data: String?) throws -> String {
        let (path, choice, saved, task) = try loadModel(location)
        guard let dataLocation = data ?? saved.config?.data.test else {
            throw UserError("\(path): the model's config names no test data; pass --data PREFIX_CSV_OR_NPZ")
        }
        // The config's own test data in the config's format; --data by its name.
        let format = data == nil ? saved.config?.data.format : nil
        let dataset = try prepare(try loadData(dataLocation, format: format, for: saved, requireTargets: true), for: saved,
                                  source: dataLocation, what: "features per sample")
        try task.validateLabels(of: dataset)
        try dataset.applyTargetNormalization(saved.normalization)
        let sums = evaluateRows(0..<dataset.count, of: dataset, network: saved.network, loss: saved.loss, task: task,
                                batchSize: 1000)
        reportModelChoice(path: path, choice: choice)
        return JSON.text(EvaluationReport(
            model: path, data: dataLocation, samples: dataset.count, metrics: task.metrics(of: sums, count: dataset.count),
            perTarget: task.perTargetMetrics(of: sums, count: dataset.count, names: saved.normalization.targetNames)))
    }

    /// `plexus predict`: the network's outputs for every row of a CSV or .npz (target columns, if any, are ignored).
    public static func predict(checkpoint: String, input: String, output: String?) throws {
        let (path, choice, saved, task) = try loadModel(checkpoint)
        let dataset = try prepare(try loadData(input, for: saved, requireTargets: false), for: saved, source: input,
                                  what: "feature columns")
        let width = saved.network.outputWidth
        var text = task.predictionHeader(width: width, targetNames: saved.normalization.targetNames).joined(separator: ",") + "\n"
        forEachInferenceBatch(0..<dataset.count, of: dataset, network: saved.network, batchSize: 1000) { outputs, _, count in
            for row in 0..<count {
                text += task.predictionFields(outputs + row * width, width: width, normalization: saved.normalization)
                    .joined(separator: ",") + "\n"
            }
        }
        if let output {
            try FileIO.writeAtomically(text, to: output)
        } else {
            FileHandle.standardOutput.write(Data(text.utf8))
        }
        reportModelChoice(path: path, choice: choice)
    }
}
