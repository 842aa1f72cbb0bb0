import Foundation

/// The files of one run directory: every name it holds is declared here, and only `create` makes the directory.
///
/// `plexus train` writes it (rank 0 alone); `evaluate`, `predict`, `plot` and `launch/supervise` read it.
public struct RunDirectory: Equatable, Sendable {
    /// The directory itself.
    public let path: String

    /// The run directory at `path` (nothing is created).
    public init(_ path: String) { self.path = path }

    /// Where runs go when `--run-dir` is not given.
    public static let defaultParent = "runs"

    /// `runs/NAME-YYYYMMDD-HHMMSS`: the default for a config file named NAME.yaml started at `date`.
    public static func defaultPath(configPath: String, date: Date = Date()) -> String {
        let name = ((configPath as NSString).lastPathComponent as NSString).deletingPathExtension
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        formatter.locale = Locale(identifier: "en_US_POSIX")
        return "\(defaultParent)/\(name)-\(formatter.string(from: date))"
    }

    /// Every file and folder of a run directory by its role, as `plexus files` lists them for scripts.
    public static let names: KeyValuePairs<String, String> = [
        "config": "config.yaml", "metrics": "metrics.jsonl", "summary": "summary.json", "exit": "exit.json",
        "final": "final.safetensors", "best": "best.safetensors", "checkpoints": "checkpoints", "lock": "train.lock",
        "restarts": "restarts.jsonl", "timeline": "timeline.json", "curves": "curves.svg",
        "validation_rows": "validation_rows.txt",
    ]

    private static func name(_ role: String) -> String {
        guard let name = names.first(where: { $0.key == role })?.value else { preconditionFailure("no run file \(role)") }
        return name
    }

    /// `name` inside the directory.
    public func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    /// The resolved config (`config.yaml`).
    public var config: String { file(Self.name("config")) }
    /// One JSON line per epoch (`metrics.jsonl`).
    public var metrics: String { file(Self.name("metrics")) }
    /// What the finished run reports (`summary.json`).
    public var summary: String { file(Self.name("summary")) }
    /// How the job ended: status, cause, rank, step, message (`exit.json`).
    public var exitRecord: String { file(Self.name("exit")) }
    /// The weights after the last epoch (`final.safetensors`).
    public var finalWeights: String { file(Self.name("final")) }
    /// The best validation epoch's weights (`best.safetensors`).
    public var bestWeights: String { file(Self.name("best")) }
    /// The folder of resumable checkpoints.
    public var checkpoints: String { file(Self.name("checkpoints")) }
    /// The one writer's lock (`train.lock`).
    public var lock: String { file(Self.name("lock")) }
    /// One JSON line per automatic restart, appended by `launch/supervise` (`restarts.jsonl`).
    public var restarts: String { file(Self.name("restarts")) }
    /// The per-rank trace of the steps (`timeline.json`).
    public var timeline: String { file(Self.name("timeline")) }
    /// The training curves (`curves.svg`).
    public var curves: String { file(Self.name("curves")) }
    /// The rows held out for validation (`validation_rows.txt`).
    public var validationRows: String { file(Self.name("validation_rows")) }

    /// The checkpoint written after optimizer step `step`: `checkpoints/step-000000123.safetensors`.
    public func checkpoint(step: Int) -> String {
        (checkpoints as NSString).appendingPathComponent(String(format: "step-%09d.safetensors", step))
    }

    /// Whether `name` (a file in `checkpoints`) is a checkpoint's name.
    public static func isCheckpointName(_ name: String) -> Bool { name.hasPrefix("step-") && name.hasSuffix(".safetensors") }

    /// Creates the directory (and its parents) if needed; a failure is a `UserError` naming the path.
    public func create() throws {
        try Self.createFolder(path, what: "the run directory")
    }

    /// Creates the checkpoint folder if needed.
    public func createCheckpointFolder() throws {
        try Self.createFolder(checkpoints, what: "the checkpoint directory")
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
