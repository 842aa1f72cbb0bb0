import Foundation

/// A file or folder of a run directory; its raw value is its name, declared nowhere else.
public enum RunFile: String, CaseIterable, Sendable {
    /// The resolved config.
    case config = "config.yaml"
    /// One JSON line per epoch.
    case metrics = "metrics.jsonl"
    /// What the finished run reports.
    case summary = "summary.json"
    /// How the job ended: status, cause, rank, step, message.
    case exitRecord = "exit.json"
    /// The weights after the last epoch.
    case finalWeights = "final.safetensors"
    /// The best validation epoch's weights.
    case bestWeights = "best.safetensors"
    /// The folder of resumable checkpoints.
    case checkpoints
    /// The one writer's lock.
    case lock = "train.lock"
    /// One JSON line per automatic restart, appended by `launch/supervise`.
    case restarts = "restarts.jsonl"
    /// The per-rank trace of the steps.
    case timeline = "timeline.json"
    /// The training curves.
    case curves = "curves.svg"
    /// The rows held out for validation.
    case validationRows = "validation_rows.txt"

    /// Its name in `plexus files` output: the case's name in snake case (`exit_record`).
    public var key: String {
        String(describing: self).reduce(into: "") { key, character in
            key += character.isUppercase ? "_" + character.lowercased() : String(character)
        }
    }
}

/// The files of one run directory (named by `RunFile`); only `create` makes the directory.
///
/// `plexus train` writes it (rank 0 alone); `evaluate`, `predict`, `plot` and `launch/supervise` read it.
public struct RunDirectory: Equatable, Sendable {
    /// The directory itself.
    public let path: String

    /// The run directory at `path` (nothing is created).
    public init(_ path: String) { self.path = path }

    /// Where runs go when `--run-dir` is not given.
    static let defaultParent = "runs"

    /// `runs/NAME-YYYYMMDD-HHMMSS`: the default for a config file named NAME.yaml started at `date`.
    public static func defaultPath(configPath: String, date: Date = Date()) -> String {
        let name = ((configPath as NSString).lastPathComponent as NSString).deletingPathExtension
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        formatter.locale = Locale(identifier: "en_US_POSIX")
        return namedPath("\(name)-\(formatter.string(from: date))")
    }

    /// `runs/NAME`: the default place of a run a job names itself (a batch job by its id, the same when requeued).
    public static func namedPath(_ name: String) -> String { "\(defaultParent)/\(name)" }

    /// The names of checkpoint files in `checkpoints`, as a shell pattern.
    public static let checkpointPattern = "step-*.safetensors"

    /// The prefix TensorBoard recognises event files by: `events.out.tfevents.SECONDS.HOST`.
    public static let eventFilePrefix = "events.out.tfevents."

    /// Where rank 0 claims exit.json's space when a run starts; renamed to exit.json when the job ends.
    public var claimedExitRecord: String {
        (path as NSString).appendingPathComponent(".\(RunFile.exitRecord.rawValue).claimed")
    }

    /// The path of `file` inside the directory.
    public subscript(_ file: RunFile) -> String { (path as NSString).appendingPathComponent(file.rawValue) }

    /// The checkpoint written after optimizer step `step`: `checkpoints/step-000000123.safetensors`.
    public func checkpoint(step: Int) -> String {
        let name = Self.checkpointPattern.replacingOccurrences(of: "*", with: String(format: "%09d", step))
        return (self[.checkpoints] as NSString).appendingPathComponent(name)
    }

    /// Whether `name` (a file in `checkpoints`) is a checkpoint's name.
    public static func isCheckpointName(_ name: String) -> Bool {
        let parts = checkpointPattern.split(separator: "*")
        return name.hasPrefix(parts[0]) && name.hasSuffix(parts[1])
    }

    /// Creates the directory (and its parents) if needed; a failure is a `UserError` naming the path.
    public func create() throws {
        try Self.createFolder(path, what: "the run directory")
    }

    /// Creates the checkpoint folder if needed.
    public func createCheckpointFolder() throws {
        try Self.createFolder(self[.checkpoints], what: "the checkpoint directory")
    }

    private static func createFolder(_ path: String, what: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw UserError("\(path): cannot create \(what) (\(describeFileError(error)))",
                            cause: (error as NSError).underlyingPOSIXCode == ENOSPC ? .diskFull : .userError)
        }
    }
}

extension NSError {
    /// The POSIX error code beneath a Foundation file error, if any.
    var underlyingPOSIXCode: Int32? {
        guard let underlying = userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain else { return nil }
        return Int32(underlying.code)
    }
}
