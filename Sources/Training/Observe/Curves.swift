import Foundation

/// One run's metrics.jsonl as `plexus plot` reads it: the run's name and, per epoch, every number its line holds.
struct RunCurves {
    let name: String
    let path: String
    /// One entry per line, keyed by the metrics.jsonl names (`epoch`, `train_loss`, `test_accuracy`, ...).
    let epochs: [[String: Double]]

    /// Every key any epoch holds, sorted.
    var keys: [String] { Set(epochs.flatMap(\.keys)).sorted() }

    /// What a plot shows unless told otherwise: the losses, then the task's metrics (every key but `MetricName.runKeys`),
    /// each measure's splits in the order train, test, val.
    var defaultMetrics: [String] {
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

    /// Reads `runDirectory/metrics.jsonl`; a missing or malformed file (or one without epochs, unless allowed) is a
    /// UserError naming the path and line.
    static func read(runDirectory: String, allowingNoEpochs: Bool = false) throws -> RunCurves {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: runDirectory, isDirectory: &isDirectory) else {
            throw UserError("\(runDirectory): no such run directory")
        }
        guard isDirectory.boolValue else { throw UserError("\(runDirectory): not a run directory (expected a directory with metrics.jsonl)") }
        let path = (runDirectory as NSString).appendingPathComponent("metrics.jsonl")
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

extension Commands {
    /// `plexus plot`: draws `metrics` (metrics.jsonl names; default: each run's losses and task metrics) of the runs in
    /// `runDirectories` into one SVG at `output`, and returns a line saying what it wrote.
    public static func plot(runDirectories: [String], output: String, metrics requested: [String]) throws -> String {
        var runs = try runDirectories.map { try RunCurves.read(runDirectory: $0) }
        // Runs that share a directory name are told apart by the path given.
        let names = runs.map(\.name)
        runs = zip(runs, runDirectories).map { run, given in
            names.filter { $0 == run.name }.count > 1 ? RunCurves(name: given, path: run.path, epochs: run.epochs) : run
        }
        for metric in requested where !runs.contains(where: { $0.keys.contains(metric) }) {
            let available = runs[0].keys.filter { $0 != "epoch" }.joined(separator: ", ")
            throw UserError("--metric \(escapedForMessage(metric)): not in any run's metrics.jsonl (\(runs[0].path) has \(available))")
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
