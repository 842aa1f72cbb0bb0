/// plexus: the executable: arguments, the diagnostics sink, exit statuses.

import ArgumentParser
import Benchmarks
import CommandLineText
import Distributed
import Foundation
import StarterConfig
import Support
import Training

/// When the process started (a run's wall time counts from here).
let launched = Date()

/// Where the library's lines go: progress and notes on stdout, warnings on stderr; commands whose stdout is their
/// output (`evaluate`, `predict`) send notes to stderr too.
final class StandardStreams: DiagnosticSink {
    var notesOnStandardError = false

    func emit(_ kind: DiagnosticKind, _ text: String) {
        let stream = kind == .warning || kind == .error || (kind == .note && notesOnStandardError) ? stderr : stdout
        fputs(text, stream)
        fflush(stream)
    }
}

let streams = StandardStreams()
Diagnostics.sink = streams

// Blocks of 128 KiB and more (decoded Parquet slabs, row buffers) get their own mappings, returned to the kernel
// when freed. glibc's default raises that threshold after each such free, after which freed slabs stay in the heap:
// a rank reading Parquet by slabs then held 60% more private memory (218 MB against 139 MB in one epoch of 784
// columns), which counts against a job's memory limit. A threshold set in the environment is left as it is.
let environment = ProcessInfo.processInfo.environment
if environment["MALLOC_MMAP_THRESHOLD_"] == nil && !(environment["GLIBC_TUNABLES"] ?? "").contains("mmap_threshold"),
   let symbol = dlsym(nil, "mallopt") {
    // malloc.h is not in Swift's Glibc module: mallopt by name (nil is RTLD_DEFAULT), M_MMAP_THRESHOLD is -3.
    let mallopt = unsafeBitCast(symbol, to: (@convention(c) (Int32, Int32) -> Int32).self)
    _ = mallopt(-3, 128 << 10)
}

/// Prints the one line for `error` on stderr.
func reportError(_ error: Error, rank: Int, worldSize: Int) {
    FileHandle.standardError.write(Data((errorLine(for: error, rank: rank, worldSize: worldSize) + "\n").utf8))
}

/// Prints a command's output (when this rank has one) on stdout.
func printOutput(_ text: String?) {
    guard let text else { return }
    print(text)
}

/// Runs `body` on every rank of this job's communicator and ends the process with its exit status, which
/// `exitRecorder` (if any) writes to the run's exit.json last.
///
/// Every rank that stops at the same point (an `AgreedStop`) leaves cleanly after one rank says why; an error only
/// this rank met is reported by it and ends every rank at once, so no rank waits forever in a collective.
func runOnEveryRank(recording exitRecorder: ExitRecorder? = nil, startUpTimeoutSeconds: Double = CollectiveTimeout.startUpDefault,
                    _ body: (Communicator) throws -> Void) -> Never {
    let communicator: Communicator
    do {
        communicator = try makeCommunicator(startUpTimeoutSeconds: startUpTimeoutSeconds)
    } catch {
        reportError(error, rank: 0, worldSize: 1)
        exit(1)
    }
    do {
        try body(communicator)
        try finish(communicator, status: 0, recording: exitRecorder)
    } catch let stop as AgreedStop {
        if communicator.rank == stop.reportingRank { reportError(stop, rank: communicator.rank, worldSize: communicator.size) }
        do { try finish(communicator, status: stop.exitStatus, after: stop, recording: exitRecorder) } catch {
            reportError(error, rank: communicator.rank, worldSize: communicator.size)
            exitRecorder?.write(status: exitStatus(of: error), error: error, communicator: communicator)
            communicator.abort(status: exitStatus(of: error))
        }
    } catch {
        reportError(error, rank: communicator.rank, worldSize: communicator.size)
        let status = exitStatus(of: error)
        exitRecorder?.write(status: status, error: error, communicator: communicator)
        if communicator.size > 1 { communicator.abort(status: status) }
        exit(status)
    }
}

/// Ends a rank that reached the end with the others (after `error`, nil when the command completed): a barrier
/// first, since MPI_Finalize's own wait for every rank has no deadline and the barrier's has (a rank stopped now is
/// named like any stall).
func finish(_ communicator: Communicator, status: Int32, after error: Error? = nil,
            recording exitRecorder: ExitRecorder?) throws -> Never {
    fflush(stdout)
    try communicator.barrier()
    exitRecorder?.write(status: status, error: error, communicator: communicator)
    communicator.finalize()
    exit(status)
}

/// Runs a command of this process alone (evaluate, predict, plot, bench gemm, config) and ends the process: an error
/// becomes its one line on stderr and its exit status.
func runInThisProcess(_ body: () throws -> Void) -> Never {
    do {
        try body()
    } catch {
        reportError(error, rank: 0, worldSize: 1)
        exit(exitStatus(of: error))
    }
    exit(0)
}

struct Plexus: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plexus",
        abstract: "Data-parallel training of dense neural networks on CPU clusters (MPI + threads).",
        version: versionText(),
        subcommands: [Train.self, Evaluate.self, Predict.self, Export.self, PlotCommand.self, Bench.self, ConfigCommand.self, Files.self,
                      Init.self])

    @Flag(name: .customLong("generate-manual"), help: ArgumentHelp("Print the man page (roff).", visibility: .hidden))
    var generateManual = false

    func run() throws {
        guard generateManual else { throw CleanExit.helpRequest(self) }
        FileHandle.standardOutput.write(Data(manualPage(for: try commandTree()).utf8))
    }
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a network from a YAML config (under mpirun: one rank per process).",
        discussion: "Writes the run directory: config.yaml (the resolved config), metrics.jsonl, checkpoints/, "
            + "summary.json and final.safetensors. Stopped by SIGUSR1, SIGTERM or SIGINT, it saves a checkpoint and "
            + "exits 75; --resume continues it.")

    @Argument(help: "The YAML config file.") var config: String
    @Option(name: .customLong("run-dir"), help: """
        Where to write \(RunFile.config.rawValue), \(RunFile.metrics.rawValue), \(RunFile.summary.rawValue) and \
        \(RunFile.finalWeights.rawValue) (default \(RunDirectory.namedPath("NAME-TIME"))).
        """)
    var runDirectory: String?
    @Option(name: .customLong("set"), help: ArgumentHelp("Override a config key; the value is parsed as YAML.", valueName: "dotted.key=value"))
    var overrides: [String] = []
    @Option(help: "live: one updating line; plain: a line per epoch (logs); auto: live if stdout is a terminal.")
    var progress: ProgressMode = .auto
    @Flag(help: "Continue the run in --run-dir from its newest valid checkpoint.")
    var resume = false

    func run() throws {
        let exitRecorder = ExitRecorder()
        let startUp = Commands.startUpTimeout(configPath: config, overrides: overrides)
        runOnEveryRank(recording: exitRecorder, startUpTimeoutSeconds: startUp) { communicator in
            try Commands.train(configPath: config, runDirectory: runDirectory, overrides: overrides, progressMode: progress,
                               resume: resume, communicator: communicator, startTime: launched, exitRecorder: exitRecorder)
        }
    }
}

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print JSON with the metrics of a run's \(RunFile.bestWeights.rawValue), else its newest checkpoint or final weights.")

    @Argument(help: "A run directory or a .safetensors file.") var model: String
    @Option(help: "IDX prefix, CSV, npz, HDF5 or Parquet file (or '{x: X.npy, y: Y.npy}') to evaluate on (default: the run's test data).") var data: String?

    func run() throws {
        streams.notesOnStandardError = true
        runInThisProcess { print(try Commands.evaluate(location: model, data: data)) }
    }
}

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write the network's outputs for each row of a CSV or .npz.")

    @Argument(help: "A .safetensors model or a run directory.") var checkpoint: String
    @Option(help: "CSV or Parquet with the model's feature columns, or .npz, .npy or HDF5 with x (target columns and y are ignored).") var input: String
    @Option(help: "Where to write the outputs CSV (default: stdout).") var output: String?
    @Flag(help: "Add each class's probability (classification), in columns headed p_NAME.") var probabilities = false

    func run() throws {
        streams.notesOnStandardError = true
        runInThisProcess {
            if let text = try Commands.predict(checkpoint: checkpoint, input: input, output: output, probabilities: probabilities) {
                FileHandle.standardOutput.write(Data(text.utf8))
            }
        }
    }
}

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a model's whole inference path as one ONNX graph (normalization, layers, softmax, sigmoid or targets' units).",
        discussion: "Inputs: one float32 [N, 1] per feature column named like its header (CSV, Parquet), else one x [N, F]. "
            + "Outputs: probabilities [N, k] (softmax, or sigmoid for 0/1 labels) and predicted_class [N] for one class "
            + "column; predictions [N, k] in the targets' units for regression. Opset 17.")

    @Argument(help: "A run directory or a .safetensors model (as predict takes it).") var model: String
    @Option(help: "The format to write.") var format: ExportFormat = .onnx
    @Option(help: "The file to write.") var output: String

    func run() throws {
        streams.notesOnStandardError = true
        runInThisProcess {
            print(try Commands.export(model: model, format: format, output: output, producerVersion: plexusVersion))
        }
    }
}

struct PlotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plot", abstract: "Draw the training curves of one or more runs (their \(RunFile.metrics.rawValue)) as an SVG.")

    @Argument(help: "Run directories.") var runs: [String]
    @Option(help: "The SVG file to write.") var output = "plot.svg"
    @Option(name: .customLong("metric"), help: ArgumentHelp("A \(RunFile.metrics.rawValue) name to draw (default: the losses and the task's metrics).",
                                                            valueName: "NAME"))
    var metrics: [String] = []

    func run() throws {
        runInThisProcess { print(try Commands.plot(runDirectories: runs, output: output, metrics: metrics)) }
    }
}

struct Files: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print NAME=PATH lines for the files of a run directory, or the fields of its exit record (for scripts).")

    @Argument(help: "A run directory.") var runDirectory: String?
    @Option(name: .customLong("default-run-dir"), help: ArgumentHelp("Use the run directory `train` would make for this config now.",
                                                                     valueName: "CONFIG"))
    var defaultFor: String?
    @Option(name: .customLong("run-name"), help: "Use the default place of a run named so (\(RunDirectory.namedPath("NAME"))).") var runName: String?
    @Flag(help: "Create the run directory if it does not exist.") var create = false
    @Flag(name: .customLong("exit-record"), help: "Print the fields of its exit record (status, cause, rank, step, message) instead.")
    var exitRecord = false

    func run() throws {
        print(try Commands.files(runDirectory: runDirectory, defaultFor: defaultFor, named: runName, create: create,
                                 exitRecord: exitRecord))
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
    @Option(help: ArgumentHelp("Least seconds of each of the three timed runs per product (the best run counts).",
                               valueName: "seconds")) var runSeconds = 0.2
    @Option(help: ArgumentHelp("What the products read: fp32, or bf16 (fp32 sums; needs AVX512_BF16).",
                               valueName: "fp32|bf16")) var precision = "fp32"

    func run() throws {
        runInThisProcess {
            print(try BenchCommands.gemm(json: json, threads: threads, batch: batch, runSeconds: runSeconds, precision: precision))
        }
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
    @Flag(name: .customLong("split-wait"),
          help: "Time the wait for the slowest rank apart from the allreduce (a barrier before it, which adds a round trip).")
    var splitWait = false

    func run() throws {
        runOnEveryRank { communicator in
            printOutput(try BenchCommands.step(configPath: config, overrides: overrides, steps: steps, warmupSteps: warmup,
                                               json: json, splitWait: splitWait, communicator: communicator))
        }
    }
}

struct BenchAllreduce: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allreduce", abstract: "Time and bandwidth of the Float allreduce from 4 KiB to 64 MiB (run under mpirun -np N).")

    @Flag(help: "Print a JSON array instead of a table.") var json = false
    @Option(name: .customLong("max-bytes"), help: "The largest message, a power of 2 (default 64 MiB).") var maxBytes = 64 << 20
    @Option(help: "Calls per size (default: as many as move about 1 GiB, 5 to 20,000).") var calls: Int?

    func run() throws {
        runOnEveryRank { printOutput(try BenchCommands.allreduce(json: json, maxBytes: maxBytes, calls: calls, communicator: $0)) }
    }
}

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a starter config for a CSV, Parquet or .npz file, a comment on each choice.",
        discussion: "The task comes from the target columns (classes, 0/1 labels or numbers), text columns become "
            + "categorical, columns with gaps get a fill, with a validation split, early stopping and a network sized to "
            + "the data; plexus train runs the config as it is.")

    @Argument(help: "The data file.") var data: String
    @Option(name: .customLong("target"), help: ArgumentHelp("A target column (repeat for several; default: label).", valueName: "COLUMN"))
    var targets: [String] = []
    @Option(help: "Where to write the config (default: stdout).") var output: String?

    func run() throws {
        runInThisProcess {
            let text = try StarterConfig.yaml(data: data, targets: targets)
            if let output { try FileIO.writeAtomically(text, to: output) } else { FileHandle.standardOutput.write(Data(text.utf8)) }
        }
    }
}

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Print a config resolved (every default spelled out), or the reference of every config key.",
        discussion: "The resolved config is what train writes to RUN_DIR/config.yaml. The config is checked as train "
            + "checks it before reading any data, and nothing is trained: a mistake is one line naming the file, line "
            + "and key (exit status 2).")

    @Argument(help: "The YAML config file.") var config: String?
    @Option(name: .customLong("set"), help: ArgumentHelp("Override a config key; the value is parsed as YAML.", valueName: "dotted.key=value"))
    var overrides: [String] = []
    @Flag(help: "Print the Markdown reference of every key (name, type, default, meaning) instead.")
    var reference = false

    func validate() throws {
        if reference && (config != nil || !overrides.isEmpty) { throw ValidationError("--reference takes no config file and no --set") }
        if !reference && config == nil { throw ValidationError("give a config file, or --reference") }
    }

    func run() throws {
        runInThisProcess {
            let text = try config.map { try Commands.resolvedConfig(path: $0, overrides: overrides) } ?? Commands.configReference
            FileHandle.standardOutput.write(Data(text.utf8))
        }
    }
}

extension ProgressMode: ExpressibleByArgument {}
extension ExportFormat: ExpressibleByArgument {}

// MARK: - Arguments

// Help, the version, completion scripts and the man page print and exit 0; a usage mistake exits 2 with one line.
// Under a launcher only rank 0 prints them, and every rank exits alike without starting MPI.
let printsCommandLineText = (launcherRank() ?? 0) == 0
var arguments = Array(CommandLine.arguments.dropFirst())

/// The command tree as ArgumentParser describes it (its public, underscored JSON dump).
func commandTree() throws -> CommandDescription { try CommandDescription(dumpedHelp: Plexus._dumpHelp()) }

/// Ends the process with status 2 and `line` on stderr.
func exitForUsageMistake(_ line: String) -> Never {
    if printsCommandLineText { FileHandle.standardError.write(Data((line + "\n").utf8)) }
    exit(2)
}

/// Ends the process for what ArgumentParser threw: help and the like print and exit 0, a mistake exits 2.
func exitForArgumentError(_ error: Error) -> Never {
    if Plexus.exitCode(for: error) == .success {
        if printsCommandLineText { print(Plexus.fullMessage(for: error)) }
        exit(0)
    }
    let message = Plexus.message(for: error)
    guard let tree = try? commandTree() else { exitForUsageMistake("plexus: \(message)") }
    exitForUsageMistake(usageMistakeLine(arguments, root: tree, message: message, configKeys: Commands.configKeyNames))
}

if arguments.contains("help"), let tree = try? commandTree() {
    // `plexus bench help gemm` as `plexus help bench gemm`; and `plexus help trian` is a mistake, not the overview.
    arguments = helpMovedToFront(arguments, root: tree)
    if arguments.first == "help", let line = unknownHelpTopic(arguments, root: tree) { exitForUsageMistake(line) }
}
var command: ParsableCommand
do {
    command = try Plexus.parseAsRoot(arguments)
} catch {
    exitForArgumentError(error)
}
do {
    // Every command ends the process itself (runOnEveryRank, runInThisProcess): what run() throws is ArgumentParser's
    // (help of `plexus help`, a bare `plexus` or `plexus bench`).
    try command.run()
} catch {
    exitForArgumentError(error)
}
