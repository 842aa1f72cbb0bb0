import Config
import Datasets
import Distributed
import Foundation
import Kernels
import NeuralNet
import Observe
import Support
import Tables

/// The `plexus` subcommands as library calls; the executable parses arguments and turns errors into exit statuses.
public enum Commands {
    /// `distributed.startup_timeout_seconds` of the config, read by this process alone before MPI starts (MPI_Init
    /// waits for every rank, so its deadline cannot wait for the collective read); the default where it cannot be read.
    public static func startUpTimeout(configPath: String, overrides: [String]) -> Double {
        (try? TrainingConfig.load(path: configPath, overrides: overrides))?.distributed.startUpTimeoutSeconds
            ?? CollectiveTimeout.startUpDefault
    }

    /// `plexus train` on every rank of `communicator`: loads the config, trains, writes the run directory; rank 0
    /// claims its exit.json in `exitRecorder` once it holds the directory's lock.
    public static func train(configPath: String, runDirectory: String?, overrides: [String], progressMode: ProgressMode = .auto,
                             resume: Bool = false, communicator: Communicator, startTime: Date = Date(),
                             exitRecorder: ExitRecorder? = nil) throws {
        let config = try collectively(communicator) { try TrainingConfig.load(path: configPath, overrides: overrides) }
        if resume && runDirectory == nil {
            throw AgreedUserError("--resume needs --run-dir DIR (the run to continue)")
        }
        // Rank 0 names the default run directory (its clock decides), every rank uses it.
        let files = RunDirectory(try communicator.broadcast(
            runDirectory ?? (communicator.rank == 0 ? RunDirectory.defaultPath(configPath: configPath) : ""), root: 0))
        // One writer per run directory: rank 0 holds its lock until the process ends; a second train stops here.
        let lock = try collectively(communicator) { () -> RunDirectoryLock? in
            guard communicator.rank == 0 else { return nil }
            let lock = try RunDirectoryLock(files)
            do { try exitRecorder?.claim(files) } catch {
                lock.discardIfUnused()
                throw error
            }
            return lock
        }
        // The memory sampler runs from before the data is read, so summary.json's peaks include loading.
        MemoryPeaks.process.sample()
        let setup: TrainingSetup
        do {
            setup = try TrainingSetup(config: config, communicator: communicator, resumingFrom: resume ? files : nil)
        } catch {
            // A fresh directory of a run that never started goes, so no record is left in it either.
            if lock?.createdDirectory == true { exitRecorder?.abandon() }
            lock?.discardIfUnused()
            throw error
        }
        try collectively(communicator) {
            if communicator.rank == 0 { try FileIO.writeAtomically(config.yaml, to: files[.config]) }
        }
        try withExtendedLifetime(lock) {
            let summary = try Trainer(setup: setup, files: files, progressMode: progressMode, startTime: startTime).run()
            exitRecorder?.finished(steps: summary.steps, line: ProgressReporter.finalLine(summary, files: files))
        }
    }

    /// `plexus config CONFIG`: the resolved config (every default spelled out) exactly as `train` writes it to
    /// `RUN_DIR/config.yaml`, or the config's first mistake; nothing is read but the config.
    public static func resolvedConfig(path: String, overrides: [String]) throws -> String {
        try TrainingConfig.load(path: path, overrides: overrides).yaml
    }

    /// `plexus config --reference`: the Markdown reference of every config key.
    public static var configReference: String { TrainingConfig.reference }

    /// The dotted name of every config key (`training.epochs`), for suggesting `--set` in place of a mistyped option.
    public static var configKeyNames: [String] { TrainingConfig.keyNames }

    /// The model file to use for a run directory: best.safetensors (the best validation epoch's weights), else the
    /// newest checkpoint, else final.safetensors; a file is itself. `choice` says which, for a run directory; a
    /// checkpoint comes with the contents it was verified from (a running job may delete the file right after).
    static func modelFile(for location: String) throws -> (path: String, choice: String?, contents: Checkpoint.Loaded?) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: location, isDirectory: &isDirectory) else {
            throw UserError("\(location): no such file or directory")
        }
        guard isDirectory.boolValue else { return (location, nil, nil) }
        let files = RunDirectory(location)
        if FileManager.default.fileExists(atPath: files[.bestWeights]) {
            return (files[.bestWeights], "the best validation epoch's weights", nil)
        }
        // The newest checkpoint that verifies (so a crash mid-write never serves a torn file), else the final weights.
        let (newest, skipped) = Checkpoint.newestValid(in: files)
        for reason in skipped { Diagnostics.warning("skipping \(reason)") }
        if let newest { return (newest.path, "the newest checkpoint", newest) }
        guard FileManager.default.fileExists(atPath: files[.finalWeights]) else {
            throw UserError("\(location): no valid checkpoint and no \(RunFile.finalWeights.rawValue) in this run directory")
        }
        return (files[.finalWeights], "the final weights", nil)
    }

    /// Says which file of a run directory a command used (a note: `evaluate` and `predict` show notes on stderr, so
    /// stdout stays the command's output).
    static func reportModelChoice(path: String, choice: String?) {
        guard let choice else { return }
        Diagnostics.note("used \(path) (\(choice))")
    }

    /// A saved model with the task its loss and outputs define.
    static func loadModel(_ location: String) throws -> (path: String, choice: String?, saved: ModelFile.Saved, task: LearningTask) {
        let (path, choice, contents) = try modelFile(for: location)
        let saved = try contents.map {
            try ModelFile.decode(tensors: $0.tensors, metadata: $0.metadata, path: path, threads: availableCPUCount())
        } ?? ModelFile.read(path: path, threads: availableCPUCount())
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
            try encoder.encodeObject(["model": model, "data": data, "samples": samples], flattened: metrics)
            guard !perTarget.isEmpty else { return }
            var container = encoder.container(keyedBy: NamedKey.self)
            var targets = container.nestedContainer(keyedBy: NamedKey.self, forKey: NamedKey("per_target"))
            for (name, values) in perTarget { try values.encode(to: targets.superEncoder(forKey: NamedKey(name))) }
        }
    }

    /// The data at `location` in `format` (default: the one its name implies) with the model's targets.
    static func loadData(_ location: DataLocation, format: DataFormat? = nil, for saved: ModelFile.Saved,
                         requireTargets: Bool) throws -> Dataset {
        let encoding = saved.normalization.encoding
        return try LoadedData.load(location, format: format ?? .init(impliedBy: location), targets: saved.normalization.targetNames,
                                   rules: encoding?.readingRules ?? ColumnRules(), classTargets: encoding?.classNames != nil,
                                   requireTargets: requireTargets)
            .dataset(encoding: encoding, targets: saved.normalization.targetNames, requireTargets: requireTargets)
    }

    /// `plexus evaluate`: the task's metrics of a saved model on a dataset (per target too), as a JSON object.
    public static func evaluate(location: String, data: String?) throws -> String {
        let (path, choice, saved, task) = try loadModel(location)
        guard let dataLocation = try data.map({ try DataLocation(commandLine: $0, option: "--data") }) ?? saved.config?.data.test else {
            throw UserError("\(path): the model's config names no test data; pass --data FILE (an IDX prefix, CSV, npz, HDF5 "
                + "or Parquet file, or '{x: X.npy, y: Y.npy}')")
        }
        // The config's own test data in the config's format; --data by its name.
        let format = data == nil ? saved.config?.data.format : nil
        let dataset = try prepare(try loadData(dataLocation, format: format, for: saved, requireTargets: true), for: saved,
                                  source: dataLocation.description, what: "features per sample")
        try task.validateTargets(of: dataset)
        try dataset.applyTargetNormalization(saved.normalization)
        let sums = evaluateRows(0..<dataset.count, of: dataset, network: saved.network, loss: saved.loss, task: task,
                                batchSize: 1000)
        reportModelChoice(path: path, choice: choice)
        return JSON.text(EvaluationReport(
            model: path, data: dataLocation.description, samples: dataset.count, metrics: task.metrics(of: sums, count: dataset.count),
            perTarget: task.perTargetMetrics(of: sums, count: dataset.count, names: saved.normalization.targetNames)))
    }

    /// `plexus predict`: the network's outputs for every row of the input (with `probabilities`, each class's
    /// probability too, headed `p_NAME`) (CSV, npz, `.npy`, HDF5 or Parquet; target
    /// columns, if any, are ignored), written to `output`, or returned as CSV text when `output` is nil.
    public static func predict(checkpoint: String, input: String, output: String?, probabilities: Bool = false) throws -> String? {
        let (path, choice, saved, task) = try loadModel(checkpoint)
        let location = try DataLocation(commandLine: input, option: "--input")
        let dataset = try prepare(try loadData(location, for: saved, requireTargets: false), for: saved, source: input,
                                  what: "feature columns")
        let width = saved.network.outputWidth
        var text = task.predictionHeader(width: width, targetNames: saved.normalization.targetNames,
                                         normalization: saved.normalization, probabilities: probabilities).joined(separator: ",") + "\n"
        forEachInferenceBatch(0..<dataset.count, of: dataset, network: saved.network, batchSize: 1000) { outputs, _, count in
            for row in 0..<count {
                text += task.predictionFields(outputs + row * width, width: width, normalization: saved.normalization,
                                              probabilities: probabilities).joined(separator: ",") + "\n"
            }
        }
        reportModelChoice(path: path, choice: choice)
        guard let output else { return text }
        try FileIO.writeAtomically(text, to: output)
        return nil
    }
}

extension Commands {
    /// `plexus plot`: draws `metrics` (metrics.jsonl names; default: each run's losses and task metrics) of the runs in
    /// `runDirectories` into one SVG at `output`, and returns a line saying what it wrote.
    public static func plot(runDirectories: [String], output: String, metrics requested: [String]) throws -> String {
        var runs = try runDirectories.map { try RunCurves.read(RunDirectory($0)) }
        // Runs that share a directory name are told apart by the path given.
        let names = runs.map(\.name)
        runs = zip(runs, runDirectories).map { run, given in
            names.filter { $0 == run.name }.count > 1 ? RunCurves(name: given, path: run.path, epochs: run.epochs) : run
        }
        for metric in requested where !runs.contains(where: { $0.keys.contains(metric) }) {
            let available = runs[0].keys.filter { $0 != "epoch" }.joined(separator: ", ")
            throw UserError("--metric \(escapedForMessage(metric)): not in any run's \(RunFile.metrics.rawValue) (\(runs[0].path) has \(available))")
        }
        var metrics = requested
        if metrics.isEmpty {
            for metric in runs.flatMap(\.defaultMetrics) where !metrics.contains(metric) { metrics.append(metric) }
        }
        guard !metrics.isEmpty else { throw UserError("\(runs[0].path): no metrics to plot (pick some with --metric)") }
        try FileIO.writeAtomically(CurvePlot.svg(runs: runs, metrics: metrics), to: output)
        return "wrote \(output): \(metrics.joined(separator: ", ")) of \(runs.count) run\(runs.count == 1 ? "" : "s")"
    }
}

extension Commands {
    /// `plexus files`, for scripts: `NAME=PATH` lines, `run_dir` first, then every `RunFile` and the checkpoint
    /// pattern, of the run directory `runDirectory`, else the one `train` would make now for the config at
    /// `defaultFor`, else the default place of a run `named` so; with `exitRecord` the fields of its exit.json
    /// (`status`, `cause`, `rank`, `step`, `message`; unknown ones empty) instead. `create` makes the directory.
    public static func files(runDirectory: String?, defaultFor configPath: String?, named: String?, create: Bool = false,
                             exitRecord: Bool = false) throws -> String {
        let given = [runDirectory, configPath.map { RunDirectory.defaultPath(configPath: $0) }, named.map(RunDirectory.namedPath)]
            .compactMap { $0 }
        guard given.count == 1, let path = given.first else {
            throw UserError("files: give one of RUN_DIR, --default-run-dir CONFIG or --run-name NAME")
        }
        let files = RunDirectory(path)
        if create { try files.create() }
        if exitRecord {
            let record = try ExitRecord.read(files)
            return [("status", "\(record.status)"), ("cause", record.cause.rawValue), ("rank", record.rank.map(String.init) ?? ""),
                    ("step", record.step.map(String.init) ?? ""), ("message", escapedForMessage(record.message))]
                .map { "\($0)=\($1)" }.joined(separator: "\n")
        }
        let lines = [("run_dir", files.path)] + RunFile.allCases.map { ($0.key, files[$0]) }
            + [("checkpoint_pattern", (files[.checkpoints] as NSString).appendingPathComponent(RunDirectory.checkpointPattern))]
        return lines.map { "\($0)=\($1)" }.joined(separator: "\n")
    }
}
