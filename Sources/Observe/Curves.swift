import Foundation
import Support

/// One run's metrics.jsonl as `plexus plot` reads it: the run's name and, per epoch, every number its line holds.
public struct RunCurves {
    public let name: String
    public let path: String
    /// One entry per line, keyed by the metrics.jsonl names (`epoch`, `train_loss`, `test_accuracy`, ...).
    public let epochs: [[String: Double]]

    /// A run named `name` whose metrics.jsonl at `path` holds `epochs`.
    public init(name: String, path: String, epochs: [[String: Double]]) {
        (self.name, self.path, self.epochs) = (name, path, epochs)
    }

    /// Every key any epoch holds, sorted.
    public var keys: [String] { Set(epochs.flatMap(\.keys)).sorted() }

    /// What a plot shows unless told otherwise: the losses, then the task's metrics (every key but `MetricName.runKeys`),
    /// each measure's splits in the order train, test, val.
    public var defaultMetrics: [String] {
        keys.filter { !MetricName.runKeys.contains($0) }.sorted { first, second in
            let (a, b) = (MetricName.parts(first), MetricName.parts(second))
            let (splitA, splitB) = (MetricName.splits.firstIndex(of: a.split) ?? 3, MetricName.splits.firstIndex(of: b.split) ?? 3)
            return (a.measure == "loss" ? 0 : 1, a.measure, splitA, first) < (b.measure == "loss" ? 0 : 1, b.measure, splitB, second)
        }
    }

    /// The numbers of one metrics.jsonl line (non-finite values, written as "NaN" or "Infinity", are left out); nil
    /// if the line is not a JSON object.
    static func numbers(inLine line: String) -> [String: Double]? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
        return object.compactMapValues { value in
            // JSON's true and false arrive as NSNumbers of type "c" (char): they are flags, not curves.
            guard let number = value as? NSNumber, String(cString: number.objCType) != "c" else { return nil }
            return number.doubleValue.isFinite ? number.doubleValue : nil
        }
    }

    /// Reads the run directory's metrics.jsonl; a missing or malformed file (or one without epochs, unless allowed) is a
    /// UserError naming the path and line.
    public static func read(_ files: RunDirectory, allowingNoEpochs: Bool = false) throws -> RunCurves {
        let runDirectory = files.path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: runDirectory, isDirectory: &isDirectory) else {
            throw UserError("\(runDirectory): no such run directory")
        }
        guard isDirectory.boolValue else { throw UserError("\(runDirectory): not a run directory (expected a directory with \(RunFile.metrics.rawValue))") }
        let path = files[.metrics]
        guard FileIO.fileExists(path) else { throw UserError("\(path): no such file (no metrics in this run directory)") }
        let bytes = try FileIO.readBytes(path: path)
        guard let text = String(bytes: bytes, encoding: .utf8) else {
            throw UserError("\(path): not UTF-8 text")
        }
        var epochs: [[String: Double]] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
            where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            guard let numbers = numbers(inLine: String(line)), numbers["epoch"] != nil else {
                throw UserError("\(path):\(index + 1): not a metrics line (a JSON object with an epoch)")
            }
            epochs.append(numbers)
        }
        if epochs.isEmpty && !allowingNoEpochs { throw UserError("\(path): no epochs recorded yet") }
        let trimmed = runDirectory.hasSuffix("/") && runDirectory.count > 1 ? String(runDirectory.dropLast()) : runDirectory
        return RunCurves(name: (trimmed as NSString).lastPathComponent, path: path, epochs: epochs)
    }
}
