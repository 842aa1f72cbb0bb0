import Distributed
import Foundation
import Kernels
import NeuralNet

/// The `plexus` subcommands as library calls; the executable only parses arguments.
public enum Commands {
    /// `plexus train`: loads the config on every rank, trains, and returns rank 0's exit status.
    public static func train(configPath: String, runDirectory: String?, overrides: [String],
                             progressMode: ProgressMode = .auto, resume: Bool = false) -> Int32 {
        let startTime = Date()
        guard let communicator = startCommunicator() else { return 1 }
        var trainer: Trainer?
        do {
            var config: TrainingConfig?
            try collectively(communicator) {
                config = try TrainingConfig.load(path: configPath, overrides: overrides)
            }
            if resume && runDirectory == nil {
                throw RankDisagreement("--resume needs --run-dir DIR (the run to continue)")
            }
            // Rank 0 names the default run directory (its clock decides), every rank uses it.
            let directory = try communicator.broadcast(
                runDirectory ?? (communicator.rank == 0 ? defaultRunDirectory(configPath: configPath) : ""), root: 0)
            trainer = try Trainer(config: config!, runDirectory: directory, communicator: communicator,
                                  startTime: startTime, progressMode: progressMode, resume: resume)
            _ = try trainer!.run()
        } catch let error as AgreedStop {
            // Every rank stopped at the same step for the same reason: rank 0 says why, all leave cleanly.
            if communicator.rank == 0 { reportError(error, rank: 0, worldSize: 1) }
            communicator.finalize()
            return error.exitStatus
        } catch {
            // Only this rank failed (I/O, ...): say why, then take the whole job down so no rank hangs.
            reportError(error, rank: communicator.rank, worldSize: communicator.size)
            let status: Int32 = isUserError(error) ? 2 : 1
            if communicator.size > 1 { communicator.abort(status: status) }
            return status
        }
        communicator.finalize()
        return 0
    }

    static func defaultRunDirectory(configPath: String) -> String {
        let name = ((configPath as NSString).lastPathComponent as NSString).deletingPathExtension
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        formatter.locale = Locale(identifier: "en_US_POSIX")
        return "runs/\(name)-\(formatter.string(from: Date()))"
    }

    /// The model file to use for a run directory: the newest checkpoint, else final.safetensors; a file is itself.
    public static func modelPath(for location: String) throws -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: location, isDirectory: &isDirectory) else {
            throw UserError("\(location): no such file or directory")
        }
        guard isDirectory.boolValue else { return location }
        // The newest checkpoint that verifies (so a crash mid-write never serves a torn file), else the final weights.
        let (newest, skipped) = Checkpoint.newestValid(in: location)
        for reason in skipped { FileHandle.standardError.write(Data("plexus: warning: skipping \(reason)\n".utf8)) }
        if let newest { return newest.path }
        let final = (location as NSString).appendingPathComponent("final.safetensors")
        guard FileManager.default.fileExists(atPath: final) else {
            throw UserError("\(location): no valid checkpoint and no final.safetensors in this run directory")
        }
        return final
    }

    static func loadDataset(_ location: String) throws -> Dataset {
        location.lowercased().hasSuffix(".csv") ? try Dataset.loadCSV(path: location) : try Dataset.loadIDX(prefix: location)
    }

    /// `plexus evaluate`: loss and accuracy of a saved model on a dataset, as a JSON object.
    public static func evaluate(location: String, data: String?) throws -> String {
        let path = try modelPath(for: location)
        let saved = try ModelFile.read(path: path, threads: availableCPUCount())
        guard let dataLocation = data ?? saved.config?.data.test else {
            throw UserError("\(path): the model's config names no test data; pass --data PREFIX_OR_CSV")
        }
        let dataset = try loadDataset(dataLocation)
        try dataset.applyNormalization(saved.normalization)
        if dataset.featureCount != saved.network.inputWidth {
            throw UserError("\(dataLocation): \(dataset.featureCount) features per sample, the model takes \(saved.network.inputWidth)")
        }
        switch saved.loss {
        case .crossEntropy: try dataset.validateClassLabels(classCount: saved.network.outputWidth)
        case .binaryCrossEntropy: try dataset.validateClassLabels(classCount: 2)
        case .meanSquaredError: break
        }
        let totals = evaluateRows(0..<dataset.count, of: dataset, network: saved.network, loss: saved.loss, batchSize: 1000)
        let count = Double(max(1, dataset.count))
        var fields = [
            "\"model\": \(quotedString(path))",
            "\"data\": \(quotedString(dataLocation))",
            "\"samples\": \(dataset.count)",
            "\"loss\": \(totals.lossSum / count)",
        ]
        if saved.loss.isClassification { fields.append("\"accuracy\": \(Double(totals.correct) / count)") }
        return "{" + fields.joined(separator: ", ") + "}"
    }

    /// `plexus predict`: the network's outputs for every row of a CSV (its `label` column, if any, is ignored).
    public static func predict(checkpoint: String, input: String, output: String?) throws {
        let path = try modelPath(for: checkpoint)
        let saved = try ModelFile.read(path: path, threads: availableCPUCount())
        let dataset = try Dataset.loadCSV(path: input, requireLabel: false)
        try dataset.applyNormalization(saved.normalization)
        if dataset.featureCount != saved.network.inputWidth {
            throw UserError("\(input): \(dataset.featureCount) feature columns, the model takes \(saved.network.inputWidth)")
        }
        let network = saved.network, width = network.outputWidth
        var text = (0..<width).map { "output_\($0)" }.joined(separator: ",")
        if saved.loss == .crossEntropy || saved.loss == .binaryCrossEntropy { text += ",predicted_class" }
        text += "\n"
        let batchSize = 1000
        network.reserve(batchCapacity: batchSize)
        var features = [Float](repeating: 0, count: batchSize * dataset.featureCount)
        var labels = [Float](repeating: 0, count: batchSize)
        var start = 0
        while start < dataset.count {
            let count = min(batchSize, dataset.count - start)
            let rows = (start..<(start + count)).map { Int32($0) }
            features.withUnsafeMutableBufferPointer { featurePointer in
                labels.withUnsafeMutableBufferPointer { labelPointer in
                    rows.withUnsafeBufferPointer {
                        dataset.gather(rows: $0, features: featurePointer.baseAddress!, labels: labelPointer.baseAddress!)
                    }
                }
            }
            let outputs = features.withUnsafeBufferPointer { network.forward(input: $0.baseAddress!, batch: count) }
            for row in 0..<count {
                let values: [Float] = (0..<width).map { outputs[row * width + $0] }
                text += values.map { "\($0)" }.joined(separator: ",")
                switch saved.loss {
                case .crossEntropy:
                    var best = 0
                    for j in 1..<width where values[j] > values[best] { best = j }
                    text += ",\(best)"
                case .binaryCrossEntropy: text += values[0] > 0 ? ",1" : ",0"
                case .meanSquaredError: break
                }
                text += "\n"
            }
            start += count
        }
        if let output {
            do {
                try text.write(toFile: output, atomically: true, encoding: .utf8)
            } catch {
                throw UserError("\(output): cannot write (\(describeFileError(error)))")
            }
        } else {
            FileHandle.standardOutput.write(Data(text.utf8))
        }
    }
}

/// This process's communicator (MPI under a launcher, else a world of one); nil after reporting why it failed.
func startCommunicator() -> Communicator? {
    do {
        return try makeCommunicator()
    } catch {
        reportError(error, rank: 0, worldSize: 1)
        return nil
    }
}
