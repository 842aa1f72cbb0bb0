import ArgumentParser
import Foundation
import Training

struct Plexus: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plexus",
        abstract: "Data-parallel training of dense neural networks on CPU clusters (MPI + threads).",
        subcommands: [Train.self, Evaluate.self, Predict.self])
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

extension ProgressMode: ExpressibleByArgument {}

// User mistakes (bad arguments, bad input) exit 2 with one line on stderr; --help exits 0.
do {
    var command = try Plexus.parseAsRoot()
    try command.run()
} catch let error as UserError {
    FileHandle.standardError.write(Data("plexus: \(error.message)\n".utf8))
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
