import Distributed
import NeuralNet
import Support
import Tables

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
    /// The column rules a table's features come from, and the target columns.
    public var rules: ColumnRules
    var targets: [String]
    /// Whether the target is a class column (whose text, if any, names the classes).
    public var classTargets: Bool
    /// Quantiles per feature of `quantile` normalization.
    var quantileCount: Int

    /// Options as a config resolves them.
    public init(normalize: Normalization, normalizeTargets: TargetNormalization, validationFraction: Double?, seed: UInt64,
                batchSize: Int, rules: ColumnRules = ColumnRules(), targets: [String] = ["label"], classTargets: Bool = false,
                quantileCount: Int = 1000) {
        (self.normalize, self.normalizeTargets, self.validationFraction) = (normalize, normalizeTargets, validationFraction)
        (self.seed, self.batchSize) = (seed, batchSize)
        (self.rules, self.targets, self.classTargets, self.quantileCount) = (rules, targets, classTargets, quantileCount)
    }
}

/// The training data, the validation data (held out of it, or from its own file) and the test data, their features
/// and targets normalized with statistics of the remaining training rows only; a table's column rules are fitted on
/// those rows too.
public struct SplitData {
    public var train: Dataset
    public var validation: Dataset?
    public var test: Dataset?
    /// Set when the validation rows were held out of the training file.
    public var split: ValidationSplit?
    /// The column rules as fitted on the training rows (tables only).
    public var encoding: TableEncoding?

    /// Holds out validation rows per `options`, fits a table's column rules on the remaining rows, then normalizes
    /// every set as the training rows say. With a communicator the passes over rows left in their files are split
    /// across the ranks, each reading its slice.
    public init(train whole: LoadedData, validation file: LoadedData?, test testData: LoadedData?, options: DataOptions,
                communicator: Communicator? = nil) throws {
        // A mistake found here is the same on every rank; under a communicator the ranks agree on it (one line, exit 2).
        func agreed<Result>(_ body: () throws -> Result) throws -> Result {
            guard let communicator else { return try body() }
            return try collectively(communicator, body)
        }
        let split = try agreed {
            try options.validationFraction.map {
                try ValidationSplit(count: whole.rowCount, fraction: $0, seed: options.seed, batchSize: options.batchSize)
            }
        }
        self.split = split
        switch whole {
        case let .rows(dataset):
            let (validationFile, testFile) = try agreed { (try file?.dataset(), try testData?.dataset()) }
            for set in [dataset, validationFile, testFile] {
                guard let set else { continue }
                guard let communicator else { try set.verifyFileRows(part: 0, of: 1); continue }
                try collectively(communicator) { try set.verifyFileRows(part: communicator.rank, of: communicator.size) }
            }
            train = split.map { dataset.subset(rows: $0.trainingRows) } ?? dataset
            validation = split.map { dataset.subset(rows: $0.validationRows) } ?? validationFile
            test = testFile
        case let .table(table):
            (encoding, train, validation, test) = try agreed {
                let trainingRows = split?.trainingRows ?? Array(0..<table.rowCount)
                let encoding = try TableEncoding.fit(table, rows: trainingRows, rules: options.rules, targets: options.targets,
                                                     classTargets: options.classTargets)
                return (encoding, try Dataset(table: table, encoding: encoding, rows: trainingRows),
                        try split.map { try Dataset(table: table, encoding: encoding, rows: $0.validationRows) }
                            ?? file.map { try Dataset(table: $0.asTable, encoding: encoding) },
                        try testData.map { try Dataset(table: $0.asTable, encoding: encoding) })
            }
        }
        // The training rows' statistics pass is split across the ranks; the other sets take its results.
        try train.applyNormalization(options.normalize, quantileCount: options.quantileCount, communicator: communicator)
        let train = train
        try agreed {
            try train.applyTargetNormalization(options.normalizeTargets)
            for set in [validation, test] {
                guard let set else { continue }
                try set.applyNormalization(options.normalize, statisticsFrom: train, quantileCount: options.quantileCount)
                try set.applyTargetNormalization(options.normalizeTargets, statisticsFrom: train)
            }
        }
    }

    /// Splits and normalizes data whose rows are numeric already.
    public init(train: Dataset, validation: Dataset?, test: Dataset?, options: DataOptions) throws {
        try self.init(train: .rows(train), validation: validation.map { .rows($0) }, test: test.map { .rows($0) }, options: options)
    }

    /// One line per data set with cells that were no training level of their categorical column (they went to
    /// "other"), e.g. `test.csv: 3 values unseen in training went to "other" (zip 2, island 1)`.
    public var unseenLevelNotes: [String] {
        [(train, "training"), (validation, "validation"), (test, "test")].compactMap { set, what in
            guard let set, !set.unseen.isEmpty else { return nil }
            let total = set.unseen.reduce(0) { $0 + $1.count }
            return "\(set.source) (\(what) rows): \(total) categorical value\(total == 1 ? "" : "s") not among the training "
                + "levels went to \"other\" (" + set.unseen.map { "\($0.column) \($0.count)" }.joined(separator: ", ") + ")"
        }
    }
}
