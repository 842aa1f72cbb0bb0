import Distributed
import NeuralNet
import Support

/// The rows `data.validation_fraction` holds out of the training data: a function of the seed, the row count and
/// the fraction alone, so every rank (and any number of ranks or threads) holds out the same rows.
public struct ValidationSplit: Equatable {
    /// Held-out rows of the training data, ascending.
    let validationRows: [Int]
    /// The rows left for training, ascending.
    let trainingRows: [Int]

    /// The stream of the seed the split is drawn from (apart from the epochs' shuffles).
    static let stream: UInt64 = 0x5641_4C49_4400_0000 // "VALID"

    /// Holds out round(fraction × count) rows, the first of a permutation drawn from `seed`; a UserError names
    /// `data.validation_fraction` when that leaves no validation row or fewer training rows than one global batch.
    init(count: Int, fraction: Double, seed: UInt64, batchSize: Int) throws {
        let held = Int((fraction * Double(count)).rounded())
        guard held > 0 else {
            throw UserError("data.validation_fraction: \(fraction) of \(count) training rows leaves no validation row")
        }
        guard count - held >= batchSize else {
            throw UserError("data.validation_fraction: \(fraction) of \(count) training rows leaves \(count - held) for training, "
                + "fewer than one global batch (training.batch_size \(batchSize))")
        }
        let order = seededPermutation(count: count, seed: seed, stream: ValidationSplit.stream)
        validationRows = order[..<held].map { Int($0) }.sorted()
        var isHeld = [Bool](repeating: false, count: count)
        for row in validationRows { isHeld[row] = true }
        trainingRows = (0..<count).filter { !isHeld[$0] }
    }

    /// The held-out rows as text, one 0-based row of the training file per line (RUN_DIR/validation_rows.txt).
    public var text: String { validationRows.map(String.init).joined(separator: "\n") + "\n" }
}

/// How a run's data is split and normalized: the `data:` keys that decide it, the seed and the global batch.
public struct DataOptions: Equatable, Sendable {
    var normalize: Normalization
    var normalizeTargets: TargetNormalization
    /// Hold out this fraction of the training rows for validation (nil: none, or a validation file).
    var validationFraction: Double?
    var seed: UInt64
    var batchSize: Int

    /// Options as a config resolves them.
    public init(normalize: Normalization, normalizeTargets: TargetNormalization, validationFraction: Double?, seed: UInt64,
                batchSize: Int) {
        (self.normalize, self.normalizeTargets, self.validationFraction) = (normalize, normalizeTargets, validationFraction)
        (self.seed, self.batchSize) = (seed, batchSize)
    }
}

/// The training data, the validation data (held out of it, or from its own file) and the test data, their features
/// and targets normalized with statistics of the remaining training rows only.
public struct SplitData {
    public var train: Dataset
    public var validation: Dataset?
    public var test: Dataset?
    /// Set when the validation rows were held out of the training file.
    public var split: ValidationSplit?

    /// Holds out validation rows per `options`, then normalizes every set as the training rows say. With a
    /// communicator the passes over rows left in their files are split across the ranks, each reading its slice.
    public init(train whole: Dataset, validation file: Dataset?, test: Dataset?, options: DataOptions,
                communicator: Communicator? = nil) throws {
        for set in [whole, file, test] {
            guard let set else { continue }
            guard let communicator else { try set.verifyFileRows(part: 0, of: 1); continue }
            try collectively(communicator) { try set.verifyFileRows(part: communicator.rank, of: communicator.size) }
        }
        train = whole
        validation = file
        self.test = test
        if let fraction = options.validationFraction {
            let split = try ValidationSplit(count: whole.count, fraction: fraction, seed: options.seed,
                                            batchSize: options.batchSize)
            train = whole.subset(rows: split.trainingRows)
            validation = whole.subset(rows: split.validationRows)
            self.split = split
        }
        for set in [train, validation, test] {
            guard let set else { continue }
            let reference = set === train ? nil : train
            try set.applyNormalization(options.normalize, statisticsFrom: reference, communicator: communicator)
            try set.applyTargetNormalization(options.normalizeTargets, statisticsFrom: reference)
        }
    }
}
