import Distributed
import Foundation
import Kernels
import NeuralNet

/// What a finished run reports (also written as summary.json).
public struct RunSummary: Codable, Equatable {
    public var worldSize: Int
    public var threadsPerRank: Int
    public var epochs: Int
    public var steps: Int
    public var trainLoss: Double
    public var testLoss: Double?
    public var testAccuracy: Double?
    public var samplesPerSecond: Double
    public var wallSeconds: Double
    public var paramSHA256: String

    enum CodingKeys: String, CodingKey {
        case worldSize = "world_size", threadsPerRank = "threads_per_rank", epochs, steps
        case trainLoss = "train_loss", testLoss = "test_loss", testAccuracy = "test_accuracy"
        case samplesPerSecond = "samples_per_second", wallSeconds = "wall_seconds", paramSHA256 = "param_sha256"
    }
}

/// The rows of a global batch that one rank computes: contiguous, sizes differing by at most one.
public func shard(of batchCount: Int, rank: Int, worldSize: Int) -> Range<Int> {
    let base = batchCount / worldSize, extra = batchCount % worldSize
    let start = rank * base + min(rank, extra)
    return start..<(start + base + (rank < extra ? 1 : 0))
}

/// Runs data-parallel training of one config on one communicator (every rank runs the same calls).
public final class Trainer {
    public let config: TrainingConfig
    public let communicator: Communicator
    public let runDirectory: String
    public let threads: Int
    let train: Dataset
    let test: Dataset?
    let network: Network
    let optimizer: Optimizer
    let schedule: LearningRateSchedule
    let progress: ProgressReporter
    let startTime: Date

    /// Loads the data, builds and initialises the network and creates the run directory; every rank calls it.
    ///
    /// A failure on any rank stops every rank with status 2 (user error) and that rank's message,
    /// because `collectively` makes all ranks learn of it at the same point.
    public init(config: TrainingConfig, runDirectory: String, communicator: Communicator, startTime: Date = Date(),
                progressMode: ProgressMode = .auto) throws {
        self.config = config
        self.communicator = communicator
        self.runDirectory = runDirectory
        self.startTime = startTime
        switch config.training.threads {
        case .auto: threads = availableCPUCount()
        case let .fixed(count): threads = count
        }
        let isRoot = communicator.rank == 0
        progress = ProgressReporter(enabled: isRoot, interactive: progressMode.isLive)

        var loaded: (Dataset, Dataset?, Network)?
        let threadCount = threads
        try collectively(communicator) {
            loaded = try Trainer.prepare(config: config, threads: threadCount)
            if isRoot { try Trainer.createRunDirectory(runDirectory, config: config) }
        }
        (train, test, network) = loaded!
        optimizer = Optimizer(settings: config.optimizer, parameterCount: network.parameterCount)
        let stepsPerEpoch = (train.count + config.training.batchSize - 1) / config.training.batchSize
        schedule = LearningRateSchedule(
            kind: config.schedule.kind, baseRate: config.optimizer.learningRate, warmupSteps: config.schedule.warmupSteps,
            stepSize: config.schedule.stepSize, gamma: Float(config.schedule.gamma),
            minimumRate: Float(config.schedule.minimumRate), totalSteps: stepsPerEpoch * config.training.epochs)

        try checkRanksAgree()
        // Every rank starts from rank 0's parameters, bit for bit.
        try communicator.broadcast(UnsafeMutableRawBufferPointer(network.parameters), root: 0)
        warnIfOversubscribed()
    }

    /// Reads data and builds the network; throws UserError for any bad input.
    static func prepare(config: TrainingConfig, threads: Int) throws -> (Dataset, Dataset?, Network) {
        let train: Dataset
        var test: Dataset?
        switch config.data.format {
        case .idx:
            train = try Dataset.loadIDX(prefix: config.data.train)
            test = try config.data.test.map { try Dataset.loadIDX(prefix: $0) }
        case .csv:
            train = try Dataset.loadCSV(path: config.data.train)
            test = try config.data.test.map { try Dataset.loadCSV(path: $0) }
        }
        if let limit = config.data.trainLimit { train.limit(to: limit) }
        try train.applyNormalization(config.data.normalize, statisticsFrom: nil)
        try test?.applyNormalization(config.data.normalize, statisticsFrom: train)

        let outputUnits = config.model.layers.last!.units
        switch config.loss {
        case .crossEntropy:
            if outputUnits < 2 {
                throw UserError("model.layers: cross_entropy needs at least 2 output units, the last layer has \(outputUnits)")
            }
            try train.validateClassLabels(classCount: outputUnits)
            try test?.validateClassLabels(classCount: outputUnits)
        case .binaryCrossEntropy:
            if outputUnits != 1 {
                throw UserError("model.layers: binary_cross_entropy needs 1 output unit (a logit), the last layer has \(outputUnits)")
            }
            try train.validateClassLabels(classCount: 2)
            try test?.validateClassLabels(classCount: 2)
        case .meanSquaredError:
            if outputUnits != 1 {
                throw UserError("model.layers: mse compares one output with the label column, the last layer has \(outputUnits) units")
            }
        }

        let network = Network(inputWidth: train.featureCount,
                              layers: config.model.layers.map { ($0.units, $0.activation) }, threads: threads)
        let biasValue: Float
        switch config.model.biasInitialization {
        case .zeros: biasValue = 0
        case let .constant(value): biasValue = value
        }
        network.initialize(weights: config.model.weightInitialization, biasValue: biasValue, seed: config.seed)
        if let path = config.model.initFrom {
            try ModelFile.load(try SafeTensors.read(path: path).tensors, into: network, source: path)
        }
        return (train, test, network)
    }

    static func createRunDirectory(_ path: String, config: TrainingConfig) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            try config.yaml.write(toFile: (path as NSString).appendingPathComponent("config.yaml"), atomically: true,
                                  encoding: .utf8)
        } catch {
            throw UserError("\(path): cannot create the run directory (\(describeFileError(error)))")
        }
    }

    /// Stops with a clear error when ranks were started with different configs or builds.
    func checkRanksAgree() throws {
        var hasher = SHA256()
        hasher.update(bytes: Array(config.yaml.utf8))
        hasher.update(bytes: Array(network.layers.map { "\($0.inputWidth)x\($0.outputWidth):\($0.activation)" }
            .joined(separator: ",").utf8))
        hasher.update(bytes: Array("\(train.count) \(test?.count ?? -1)".utf8))
        let digest = hasher.finalize()
        let value = digest.prefix(8).reduce(Int64(0)) { $0 << 8 | Int64($1) }
        let low = try communicator.allreduceMin(value), high = try communicator.allreduceMax(value)
        if low != high {
            throw RankDisagreement("ranks disagree on the resolved config, parameter layout or data sizes "
                + "(config hash differs between ranks); start every rank with the same config, data and binary")
        }
    }

    func warnIfOversubscribed() {
        guard communicator.rank == 0 else { return }
        let environment = ProcessInfo.processInfo.environment
        let ranksPerNode = ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"]
            .compactMap { environment[$0].flatMap { Int($0) } }.first ?? 1
        let cores = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        if ranksPerNode * threads > cores {
            progress.warn("\(ranksPerNode) ranks × \(threads) threads on this node exceed its \(cores) cores; "
                + "expect slower steps (set training.threads or use fewer ranks)")
        }
    }

    /// Trains for `training.epochs`, writes metrics, summary and final weights; returns the summary on every rank.
    public func run() throws -> RunSummary {
        let rank = communicator.rank, worldSize = communicator.size
        let batchSize = config.training.batchSize
        let localCapacity = shard(of: batchSize, rank: 0, worldSize: worldSize).count
        let width = train.featureCount, outputs = network.outputWidth
        network.reserve(batchCapacity: max(localCapacity, config.training.evaluationBatchSize))
        let input = UnsafeMutablePointer<Float>.allocate(capacity: max(1, localCapacity * width))
        let labels = UnsafeMutablePointer<Float>.allocate(capacity: max(1, localCapacity))
        let outputGradient = UnsafeMutablePointer<Float>.allocate(capacity: max(1, localCapacity * outputs))
        defer { input.deallocate(); labels.deallocate(); outputGradient.deallocate() }

        let metrics = rank == 0 ? try MetricsLog(path: path("metrics.jsonl")) : nil
        progress.start(config: config, network: network, worldSize: worldSize, threads: threads,
                       trainCount: train.count, testCount: test?.count, runDirectory: runDirectory)
        let stepsPerEpoch = (train.count + batchSize - 1) / batchSize
        var step = 0
        var trainingSeconds = 0.0
        var trainedSamples = 0
        var lastTrainLoss = 0.0
        var lastEvaluation: Evaluation?

        for epoch in 0..<config.training.epochs {
            let order = config.training.shuffle
                ? epochPermutation(count: train.count, seed: config.seed, epoch: epoch)
                : (0..<train.count).map { Int32($0) }
            let epochStart = Date()
            var epochLoss = 0.0 // this rank's sum of per-sample losses
            for batchIndex in 0..<stepsPerEpoch {
                let batchStart = batchIndex * batchSize
                let globalCount = min(batchSize, train.count - batchStart)
                let mine = shard(of: globalCount, rank: rank, worldSize: worldSize)
                let count = mine.count

                // batch → forward → loss → backward → allreduce → step → log
                order.withUnsafeBufferPointer {
                    train.gather(rows: UnsafeBufferPointer(rebasing: $0[(batchStart + mine.lowerBound)..<(batchStart + mine.upperBound)]),
                                 features: input, labels: labels)
                }
                let prediction = network.forward(input: input, batch: count)
                let totals = config.loss.evaluate(outputs: prediction, labels: labels, batch: count, width: outputs,
                                                  gradient: outputGradient, gradientScale: 1 / Float(globalCount))
                network.backward(input: input, outputGradient: outputGradient, batch: count)
                try communicator.allreduceSum(network.gradients)
                if let maximum = config.training.clipGradientNorm {
                    let norm = network.gradientNorm()
                    if norm > maximum { scale(network.gradients.baseAddress!, count: network.parameterCount,
                                              by: Float(maximum / (norm + 1e-6))) }
                }
                let rate = schedule.rate(atStep: step)
                optimizer.step(parameters: network.parameters.baseAddress!, gradients: network.gradients.baseAddress!,
                               learningRate: rate, threads: threads)
                step += 1
                epochLoss += totals.lossSum
                progress.step(epoch: epoch, epochs: config.training.epochs, stepInEpoch: batchIndex + 1,
                              stepsPerEpoch: stepsPerEpoch, loss: totals.lossSum / Double(max(1, count)),
                              samples: batchStart + globalCount, since: epochStart, every: config.logging.everySteps)
            }
            let epochSeconds = Date().timeIntervalSince(epochStart)
            trainingSeconds += epochSeconds
            trainedSamples += train.count
            lastTrainLoss = try communicator.allreduceSum([epochLoss])[0] / Double(train.count)
            lastEvaluation = try test.map { try evaluate(on: $0) }
            let record = EpochRecord(epoch: epoch + 1, step: step, learningRate: Double(schedule.rate(atStep: max(0, step - 1))),
                                     trainLoss: lastTrainLoss, testLoss: lastEvaluation?.loss,
                                     testAccuracy: lastEvaluation?.accuracy,
                                     samplesPerSecond: Double(train.count) / epochSeconds,
                                     elapsedSeconds: Date().timeIntervalSince(startTime))
            try metrics?.append(record)
            progress.epoch(record, epochs: config.training.epochs)
        }

        let summary = RunSummary(
            worldSize: worldSize, threadsPerRank: threads, epochs: config.training.epochs, steps: step,
            trainLoss: lastTrainLoss, testLoss: lastEvaluation?.loss,
            testAccuracy: config.loss.isClassification ? lastEvaluation?.accuracy : nil,
            samplesPerSecond: Double(trainedSamples) / max(trainingSeconds, 1e-9),
            wallSeconds: Date().timeIntervalSince(startTime), paramSHA256: ModelFile.parameterHash(of: network))
        if rank == 0 {
            try ModelFile.write(network, config: config, normalization: train.normalizationRecord, to: path("final.safetensors"))
            try writeJSON(summary, to: path("summary.json"))
            progress.finish(summary, runDirectory: runDirectory)
        }
        return summary
    }

    /// Loss and accuracy over a dataset, sharded across ranks and reduced.
    public struct Evaluation {
        public var loss: Double
        public var accuracy: Double
        public var count: Int
    }

    func evaluate(on data: Dataset) throws -> Evaluation {
        let mine = shard(of: data.count, rank: communicator.rank, worldSize: communicator.size)
        let local = evaluateRows(mine, of: data, network: network, loss: config.loss, batchSize: config.training.evaluationBatchSize)
        let sums = try communicator.allreduceSum([local.lossSum, Double(local.correct)])
        return Evaluation(loss: sums[0] / Double(max(1, data.count)), accuracy: sums[1] / Double(max(1, data.count)),
                          count: data.count)
    }

    func path(_ name: String) -> String { (runDirectory as NSString).appendingPathComponent(name) }
}

/// Sums loss and correct predictions over `rows` of `data`, in batches.
public func evaluateRows(_ rows: Range<Int>, of data: Dataset, network: Network, loss: Loss, batchSize: Int) -> Loss.BatchTotals {
    var totals = Loss.BatchTotals()
    guard !rows.isEmpty else { return totals }
    let width = data.featureCount
    network.reserve(batchCapacity: batchSize)
    let input = UnsafeMutablePointer<Float>.allocate(capacity: batchSize * width)
    let labels = UnsafeMutablePointer<Float>.allocate(capacity: batchSize)
    defer { input.deallocate(); labels.deallocate() }
    var indices = [Int32](repeating: 0, count: batchSize)
    var start = rows.lowerBound
    while start < rows.upperBound {
        let count = min(batchSize, rows.upperBound - start)
        for i in 0..<count { indices[i] = Int32(start + i) }
        indices.withUnsafeBufferPointer {
            data.gather(rows: UnsafeBufferPointer(rebasing: $0[0..<count]), features: input, labels: labels)
        }
        let outputs = network.forward(input: input, batch: count)
        let batch = loss.evaluate(outputs: outputs, labels: labels, batch: count, width: network.outputWidth,
                                  gradient: nil, gradientScale: 0)
        totals.lossSum += batch.lossSum
        totals.correct += batch.correct
        start += count
    }
    return totals
}

/// Ranks were started inconsistently (a user error: exit 2).
struct RankDisagreement: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs `body` on every rank, then lets all ranks learn whether any failed: the lowest failing rank prints its
/// message and every rank exits with 2 (user error) or 1, so no rank waits forever in a later collective.
public func collectively(_ communicator: Communicator, _ body: () throws -> Void) throws {
    var failure: Error?
    do { try body() } catch { failure = error }
    let firstFailing = try communicator.allreduceMin(Int64(failure == nil ? communicator.size : communicator.rank))
    guard firstFailing < Int64(communicator.size) else { return }
    let anyInternal = try communicator.allreduceMax(Int64(failure.map { isUserError($0) ? 0 : 1 } ?? 0))
    if Int64(communicator.rank) == firstFailing, let failure {
        reportError(failure, rank: communicator.rank, worldSize: communicator.size)
    }
    communicator.finalize()
    exit(anyInternal == 0 ? 2 : 1)
}

/// Whether an error is the user's mistake (exit status 2).
public func isUserError(_ error: Error) -> Bool { error is UserError || error is RankDisagreement }

/// Prints one line for `error` on stderr, prefixed with the rank when there are several.
public func reportError(_ error: Error, rank: Int, worldSize: Int) {
    let prefix = worldSize > 1 ? "plexus: rank \(rank): " : "plexus: "
    let text = String(describing: error)
    FileHandle.standardError.write(Data((prefix + (isUserError(error) ? "" : "error: ") + text + "\n").utf8))
}

func describeFileError(_ error: Error) -> String {
    let nsError = error as NSError
    if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
        return String(cString: strerror(Int32(underlying.code)))
    }
    return nsError.localizedDescription
}

func writeJSON<T: Encodable>(_ value: T, to path: String) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    let data = try encoder.encode(value)
    do {
        try (data + Data("\n".utf8)).write(to: URL(fileURLWithPath: path), options: .atomic)
    } catch {
        throw UserError("\(path): cannot write (\(describeFileError(error)))")
    }
}
