import ArgumentParser
import Foundation
import Training

struct Plexus: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plexus",
        abstract: "Data-parallel training of dense neural networks on CPU clusters (MPI + threads).",
        subcommands: [Train.self, Evaluate.self, Predict.self, Bench.self])
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Train a network from a YAML config (under mpirun: one rank per process).")

    @Argument(help: "The YAML config file.") var config: String
    @Option(name: .customLong("run-dir"), help: "Where to write config.yaml, metrics.jsonl, summary.json and final.safetensors (default runs/NAME-TIME).")
    var runDirectory: String?
    @Option(name: .customLong("set"), help: ArgumentHelp("Override a config key; the value is parsed as YAML.", valueName: "dotted.key=value"))
    var overrides: [String] = []
    @Option(help: "live: one updating line; plain: a line per epoch (logs); auto: live if stdout is a terminal.")
    var progress: ProgressMode = .auto
    @Flag(help: "Continue the run in --run-dir from its newest valid checkpoint.")
    var resume = false

    func run() throws {
        let status = Commands.train(configPath: config, runDirectory: runDirectory, overrides: overrides,
                                    progressMode: progress, resume: resume)
        if status != 0 { throw ExitCode(status) }
    }
}

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print JSON with the loss and accuracy of a run's newest checkpoint or final weights.")

    @Argument(help: "A run directory or a .safetensors file.") var model: String
    @Option(help: "IDX prefix or CSV file to evaluate on (default: the run's test data).") var data: String?

    func run() throws {
        print(try Commands.evaluate(location: model, data: data))
    }
}

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write the network's outputs for each row of a CSV.")

    @Argument(help: "A .safetensors model or a run directory.") var checkpoint: String
    @Option(help: "CSV with the model's feature columns (a label column is ignored).") var input: String
    @Option(help: "Where to write the outputs CSV (default: stdout).") var output: String?

    func run() throws {
        try Commands.predict(checkpoint: checkpoint, input: input, output: output)
    }
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure GEMM speed, the training step and the allreduce.",
        subcommands: [BenchGemm.self, BenchStep.self, BenchAllreduce.self])
}

struct BenchGemm: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm", abstract: "GFLOP/s of the GEMM on the training shapes of 784-256-128-10 and 784-512-256-10.")

    @Flag(help: "Print a JSON array instead of a table.") var json = false
    @Option(help: ArgumentHelp("Thread counts to measure, comma-separated (default: 1 and all CPUs).", valueName: "1,2"))
    var threads: String?
    @Option(help: "Rows per rank (the global batch divided by the ranks).") var batch = 128

    func run() throws {
        print(try BenchCommands.gemm(json: json, threads: threads, batch: batch))
    }
}

struct BenchStep: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "step", abstract: "Samples/s of the full training step and where its time goes (works under mpirun; rank 0 prints).")

    @Argument(help: "The YAML config file.") var config: String
    @Option(help: "Timed steps.") var steps = 300
    @Option(help: "Untimed steps before them.") var warmup = 20
    @Option(name: .customLong("set"), help: ArgumentHelp("Override a config key; the value is parsed as YAML.", valueName: "dotted.key=value"))
    var overrides: [String] = []
    @Flag(help: "Print one JSON object instead of text.") var json = false

    func run() throws {
        let status = BenchCommands.step(configPath: config, overrides: overrides, steps: steps, warmupSteps: warmup, json: json)
        if status != 0 { throw ExitCode(status) }
    }
}

struct BenchAllreduce: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allreduce", abstract: "Time and bandwidth of the Float allreduce from 4 KiB to 64 MiB (run under mpirun -np N).")

    @Flag(help: "Print a JSON array instead of a table.") var json = false

    func run() throws {
        let status = BenchCommands.allreduce(json: json)
        if status != 0 { throw ExitCode(status) }
    }
}

extension ProgressMode: ExpressibleByArgument {}

// User mistakes (bad arguments, bad input) exit 2 with one line on stderr; --help exits 0.
do {
    var command = try Plexus.parseAsRoot()
    try command.run()
} catch let error as UserError {
    reportError(error, rank: 0, worldSize: 1)
    exit(2)
} catch let exitCode as ExitCode {
    exit(exitCode.rawValue)
} catch {
    let code = Plexus.exitCode(for: error)
    if code == .success {
        print(Plexus.fullMessage(for: error))
        exit(0)
    }
    let message = Plexus.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
    FileHandle.standardError.write(Data("plexus: \(message)\n".utf8))
    // Argument mistakes are the user's (2); anything else is ours (1).
    exit(code == .failure ? 1 : 2)
}
