@testable import Formats
import Foundation
@testable import Training
import XCTest

/// Every user mistake: exit status 2, exactly one line on stderr naming the file:line or key, no crash trace.
final class CommandLineErrorTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws { directory = try PlexusProcess.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    func write(_ name: String, _ text: String) -> String {
        let path = (directory as NSString).appendingPathComponent(name)
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        return path
    }

    @discardableResult
    func writeBytes(_ name: String, _ bytes: [UInt8]) -> String {
        let path = (directory as NSString).appendingPathComponent(name)
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }

    /// A valid CSV classification config around `train`.
    func csvConfig(train: String, layers: String = "[{units: 4, activation: relu}, {units: 3}]", extra: String = "") -> String {
        write("config.yaml", """
            data: {train: \(train)}
            model: {layers: \(layers)}
            training: {epochs: 1, batch_size: 2, threads: 1}
            \(extra)
            """)
    }

    func assertUserError(_ arguments: [String], mentions fragments: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let result = try PlexusProcess.plexus(arguments, file: file, line: line)
        XCTAssertEqual(result.status, 2, "exit status; stderr: \(result.standardError)", file: file, line: line)
        let lines = result.standardError.split(separator: "\n", omittingEmptySubsequences: true)
        XCTAssertEqual(lines.count, 1, "exactly one line on stderr, got: \(result.standardError)", file: file, line: line)
        for fragment in fragments {
            XCTAssertTrue(result.standardError.contains(fragment), "stderr \(result.standardError) lacks \(fragment)",
                          file: file, line: line)
        }
    }

    var goodCSV: String { write("good.csv", "x1,x2,label\n0.5,1,0\n1.5,2,1\n-1,0.25,2\n3,1,0\n") }

    func testConfigMistakes() throws {
        try assertUserError(["train", "/nonexistent/config.yaml"], mentions: ["/nonexistent/config.yaml", "no such file"])
        let syntax = write("syntax.yaml", "data:\n  train: [a, b\nmodel: {}\n")
        try assertUserError(["train", syntax], mentions: ["syntax.yaml:", "YAML syntax error"])
        let unknown = csvConfig(train: goodCSV, extra: "optimizer: {name: sgd, learning_rate: 0.1}")
        try assertUserError(["train", unknown, "--run-dir", directory + "/run"], mentions: ["config.yaml:4", "optimizer.learning_rate", "unknown key"])
        let config = csvConfig(train: goodCSV)
        try assertUserError(["train", config, "--set", "training.epochs=many"], mentions: ["training.epochs", "integer"])
        try assertUserError(["train", config, "--set", "optimizer.lr=0"], mentions: ["optimizer.lr", "greater than 0"])
        try assertUserError(["train", config, "--set", "model.layers=[{units: 0}]"], mentions: ["model.layers[0].units", "at least 1"])
        try assertUserError(["train", config, "--set", "model.layers=[{units: 3, activation: swish}]"],
                            mentions: ["model.layers[0].activation", "swish"])
        try assertUserError(["train", config, "--frobnicate"], mentions: ["--frobnicate"])
    }

    func testDataMistakes() throws {
        let nonNumeric = write("nonnumeric.csv", "x1,x2,label\n0.5,1,0\n1.5,abc,1\n")
        try assertUserError(["train", csvConfig(train: nonNumeric), "--run-dir", directory + "/r1"],
                            mentions: ["nonnumeric.csv:3", "abc", "x2"])
        let ragged = write("ragged.csv", "x1,x2,label\n0.5,1,0\n\n1.5,1\n")
        try assertUserError(["train", csvConfig(train: ragged), "--run-dir", directory + "/r2"], mentions: ["ragged.csv:4"])
        let badLabel = write("badlabel.csv", "x1,x2,label\n0.5,1,0\n1.5,2,7\n")
        try assertUserError(["train", csvConfig(train: badLabel), "--run-dir", directory + "/r3"],
                            mentions: ["badlabel.csv:3", "label 7", "0..<3"])
        try assertUserError(["train", csvConfig(train: directory + "/absent.csv"), "--run-dir", directory + "/r4"],
                            mentions: ["absent.csv"])

        // IDX: wrong magic and truncated data.
        writeBytes("bad-labels-idx1-ubyte", [0, 0, 8, 1, 0, 0, 0, 2, 0, 1])
        writeBytes("bad-images-idx3-ubyte", [1, 2, 3, 4, 0, 0, 0, 2])
        let idxConfig = write("idx.yaml", "data: {format: idx, train: \(directory)/bad}\nmodel: {layers: [{units: 10}]}\n")
        try assertUserError(["train", idxConfig, "--run-dir", directory + "/r5"], mentions: ["bad-images-idx3-ubyte", "magic"])
        writeBytes("bad-images-idx3-ubyte", [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3])
        try assertUserError(["train", idxConfig, "--run-dir", directory + "/r6"], mentions: ["bad-images-idx3-ubyte", "truncated"])
    }

    func testValidationEarlyStoppingAndDropoutMistakes() throws {
        let config = csvConfig(train: goodCSV)
        try assertUserError(["train", config, "--set", "data.validation_fraction=1.5"],
                            mentions: ["data.validation_fraction", "less than 1"])
        try assertUserError(["train", config, "--set", "data.validation_fraction=0.1", "--run-dir", directory + "/v1"],
                            mentions: ["data.validation_fraction: 0.1 of 4 training rows leaves no validation row"])
        try assertUserError(["train", config, "--set", "data.validation_fraction=0.5", "--set", "training.batch_size=3",
                             "--run-dir", directory + "/v2"], mentions: ["data.validation_fraction", "fewer than one global batch"])
        try assertUserError(["train", config, "--set", "data.validation=\(goodCSV)", "--set", "data.validation_fraction=0.5"],
                            mentions: ["not both"])
        try assertUserError(["train", config, "--set", "training.early_stopping={patience: 2}"],
                            mentions: ["training.early_stopping", "needs validation data"])
        try assertUserError(["train", config, "--set", "data.validation=\(goodCSV)", "--set", "training.early_stopping={metric: val_rmse}",
                             "--run-dir", directory + "/v3"],
                            mentions: ["training.early_stopping.metric", "val_rmse", "val_loss, val_accuracy"])
        try assertUserError(["train", config, "--set", "data.validation=\(directory)/absent.csv", "--run-dir", directory + "/v4"],
                            mentions: ["absent.csv"])
        let narrow = write("narrow.csv", "x1,label\n0.5,0\n")
        try assertUserError(["train", config, "--set", "data.validation=\(narrow)", "--run-dir", directory + "/v5"],
                            mentions: ["narrow.csv:1", "no \"x2\" column in the header (the model's feature)"])
        try assertUserError(["train", config, "--set", "model.layers=[{units: 4, activation: relu, dropout: 1}, {units: 3}]"],
                            mentions: ["model.layers[0].dropout", "less than 1"])
    }

    func testSafetensorsMistakes() throws {
        let corrupt = writeBytes("corrupt.safetensors", [200, 0, 0, 0, 0, 0, 0, 0] + Array("{\"a\":".utf8))
        try assertUserError(["train", csvConfig(train: goodCSV, layers: "[{units: 3}]"), "--set", "model.init_from=\(corrupt)",
                             "--run-dir", directory + "/r7"], mentions: ["corrupt.safetensors", "corrupt safetensors"])
        try assertUserError(["evaluate", corrupt], mentions: ["corrupt.safetensors", "corrupt safetensors"])
        // A tensor of the wrong shape is named.
        let wrongShape = (directory as NSString).appendingPathComponent("wrong.safetensors")
        try SafeTensors.write([TensorRecord(name: "layers.0.weight", shape: [3, 5], values: [Float](repeating: 0, count: 15)),
                               TensorRecord(name: "layers.0.bias", shape: [3], values: [0, 0, 0])], metadata: [:], to: wrongShape)
        let config = csvConfig(train: goodCSV, layers: "[{units: 3}]")
        try assertUserError(["train", config, "--set", "model.init_from=\(wrongShape)", "--run-dir", directory + "/r8"],
                            mentions: ["wrong.safetensors", "layers.0.weight", "[3, 5]", "[3, 2]"])
    }
}

/// The command line's own answers: help, the version, completion scripts, the man page, `plexus config`, and one line
/// naming the closest valid name for a mistyped subcommand or option.
final class CommandLineTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws { directory = try PlexusProcess.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    /// A visible command of the binary: its path below `plexus` and its visible long options.
    struct Command {
        let path: [String]
        let options: [String]
    }

    /// Every visible command, the root first, from the binary's own description of its tree.
    func commands() throws -> [Command] {
        let result = try PlexusProcess.plexus(["--experimental-dump-help"])
        XCTAssertEqual(result.status, 0, result.standardError)
        let document = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        var found: [Command] = []
        func visit(_ command: [String: Any], path: [String]) {
            let arguments = command["arguments"] as? [[String: Any]] ?? []
            let options = arguments.filter { ($0["shouldDisplay"] as? Bool) != false && ($0["kind"] as? String) != "positional" }
                .flatMap { ($0["names"] as? [[String: String]] ?? []).filter { $0["kind"] == "long" }.compactMap { $0["name"] } }
                .map { "--" + $0 }
            found.append(Command(path: path, options: options))
            for subcommand in command["subcommands"] as? [[String: Any]] ?? [] where (subcommand["shouldDisplay"] as? Bool) != false {
                guard let name = subcommand["commandName"] as? String, name != "help" else { continue }
                visit(subcommand, path: path + [name])
            }
        }
        visit(try XCTUnwrap(document["command"] as? [String: Any]), path: [])
        return found
    }

    func assertUsageMistake(_ arguments: [String], line expected: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let result = try PlexusProcess.plexus(arguments, file: file, line: line)
        XCTAssertEqual(result.status, 2, result.standardError, file: file, line: line)
        XCTAssertEqual(result.standardError, expected + "\n", file: file, line: line)
        XCTAssertEqual(result.standardOutput, "", file: file, line: line)
    }

    func testHelpOnEveryCommandExitsZero() throws {
        let commands = try commands()
        XCTAssertTrue(commands.contains { $0.path == ["bench", "gemm"] } && commands.contains { $0.path == ["config"] })
        for command in commands {
            let name = (["plexus"] + command.path).joined(separator: " ")
            for arguments in [command.path + ["--help"], command.path + ["-h"], ["help"] + command.path] {
                let result = try PlexusProcess.plexus(arguments)
                XCTAssertEqual(result.status, 0, "\(arguments): \(result.standardError)")
                XCTAssertEqual(result.standardError, "", "\(arguments)")
                XCTAssertTrue(result.standardOutput.contains("USAGE: \(name)"), "\(arguments): \(result.standardOutput)")
            }
        }
        // `help` after subcommand names, and a bare command with subcommands, show help too.
        let nested = try PlexusProcess.plexus(["bench", "help", "gemm"])
        XCTAssertEqual(nested.status, 0, nested.standardError)
        XCTAssertTrue(nested.standardOutput.contains("USAGE: plexus bench gemm"), nested.standardOutput)
        for arguments in [[], ["bench"]] {
            let result = try PlexusProcess.plexus(arguments)
            XCTAssertEqual(result.status, 0, result.standardError)
            XCTAssertTrue(result.standardOutput.contains("SUBCOMMANDS:"), result.standardOutput)
        }
    }

    func testVersionNamesTheBuildTheKernelsAndMPI() throws {
        let result = try PlexusProcess.plexus(["--version"])
        XCTAssertEqual(result.status, 0, result.standardError)
        let lines = result.standardOutput.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 3, result.standardOutput)
        let version = try String(contentsOfFile: PlexusProcess.root + "/VERSION", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let head = try PlexusProcess.run("/usr/bin/git", ["-C", PlexusProcess.root, "rev-parse", "HEAD"])
        if head.status == 0 {
            XCTAssertTrue(lines[0].hasPrefix("plexus \(version) (git "), lines[0])
            XCTAssertTrue(lines[0].contains(String(head.standardOutput.prefix(7))), "\(lines[0]) lacks HEAD \(head.standardOutput)")
        } else {
            XCTAssertEqual(lines[0], "plexus \(version) (built outside a git checkout)")
        }
        XCTAssertNotNil(lines[1].range(of: #"^kernels: avx2(, avx512)? in this build; this CPU runs (avx2|avx2, avx512)$"#,
                                       options: .regularExpression), lines[1])
        XCTAssertTrue(lines[2].hasPrefix("MPI: built against ") && lines[2].contains("; loaded: "), lines[2])
        let mpirun = try PlexusProcess.run("/usr/bin/mpirun", ["--version"])
        if let match = mpirun.standardOutput.range(of: #"\(Open MPI\) [0-9.]+"#, options: .regularExpression) {
            let number = mpirun.standardOutput[match].split(separator: " ").last!
            XCTAssertTrue(lines[2].contains("built against Open MPI \(number) "), "\(lines[2]) vs mpirun \(number)")
        }
    }

    func testMistypedSubcommandsAndOptionsNameTheClosest() throws {
        try assertUsageMistake(["trian", "cfg.yaml"], line: "plexus: unknown subcommand 'trian'; did you mean 'train'?")
        try assertUsageMistake(["bench", "gem"], line: "plexus bench: unknown subcommand 'gem'; did you mean 'gemm'?")
        try assertUsageMistake(["help", "evalute"], line: "plexus help: unknown subcommand 'evalute'; did you mean 'evaluate'?")
        try assertUsageMistake(["train", "cfg.yaml", "--run-directory", "r"],
                               line: "plexus train: unknown option '--run-directory'; did you mean '--run-dir'?")
        try assertUsageMistake(["bench", "gemm", "--thread", "2"],
                               line: "plexus bench gemm: unknown option '--thread'; did you mean '--threads'?")
        try assertUsageMistake(["train", "cfg.yaml", "--epochs", "3"],
                               line: "plexus train: unknown option '--epochs'; did you mean '--set training.epochs=3'?")
        try assertUsageMistake(["--verison"], line: "plexus: unknown option '--verison'; did you mean '--version'?")
        let unknown = try PlexusProcess.plexus(["frobnicate"])
        XCTAssertEqual(unknown.status, 2)
        XCTAssertTrue(unknown.standardError.hasPrefix("plexus: unknown subcommand 'frobnicate' (subcommands: train, "),
                      unknown.standardError)
        // Other mistakes: ArgumentParser's message, on one line.
        try assertUsageMistake(["evaluate"], line: "plexus evaluate: missing expected argument '<model>' (see 'plexus evaluate --help')")
        try assertUsageMistake(["config"], line: "plexus config: give a config file, or --reference (see 'plexus config --help')")
    }

    func testUsageMistakeUnderMpirunEndsEveryRankWithStatusTwo() throws {
        let result = try PlexusProcess.mpirun(ranks: 2, ["trian", "cfg.yaml"])
        XCTAssertEqual(result.status, 2, result.standardError)
        let lines = (result.standardOutput + result.standardError).split(separator: "\n").filter { $0.hasPrefix("plexus") }
        XCTAssertEqual(lines, ["plexus: unknown subcommand 'trian'; did you mean 'train'?"], result.standardError)
        // Each rank's own status, through a shell that reports it and then exits 0 (so mpirun stops no rank early).
        let report = #""$0" "$@"; echo "rank $OMPI_COMM_WORLD_RANK exited $?""#
        let wrapped = try PlexusProcess.run("/usr/bin/mpirun", ["-np", "2", "--oversubscribe", "/bin/sh", "-c", report,
                                                                PlexusProcess.binary, "trian", "cfg.yaml"])
        XCTAssertEqual(wrapped.status, 0, wrapped.standardError)
        XCTAssertEqual(Set(wrapped.standardOutput.split(separator: "\n")), ["rank 0 exited 2", "rank 1 exited 2"], wrapped.standardOutput)
        XCTAssertEqual(wrapped.standardError.split(separator: "\n").filter { $0.hasPrefix("plexus") }.count, 1, wrapped.standardError)
    }

    func testCompletionScripts() throws {
        for shell in ["bash", "zsh", "fish"] {
            let result = try PlexusProcess.plexus(["--generate-completion-script", shell])
            XCTAssertEqual(result.status, 0, result.standardError)
            for name in ["train", "evaluate", "gemm", "config", "run-dir", "reference"] {
                XCTAssertTrue(result.standardOutput.contains(name), "\(shell) completions lack \(name)")
            }
            let checker = ["/usr/bin/\(shell)", "/bin/\(shell)"].first { FileManager.default.isExecutableFile(atPath: $0) }
            if let checker, shell != "fish" {
                let script = (directory as NSString).appendingPathComponent("completion.\(shell)")
                try result.standardOutput.write(toFile: script, atomically: true, encoding: .utf8)
                let syntax = try PlexusProcess.run(checker, ["-n", script])
                XCTAssertEqual(syntax.status, 0, "\(shell) -n: \(syntax.standardError)")
            }
        }
        try assertUsageMistake(["--generate-completion-script", "tcsh"],
                               line: "plexus: can't generate completion scripts for 'tcsh'. Please use "
                                   + "--generate-completion-script=<shell> with one of: zsh bash fish (see 'plexus --help')")
    }

    func testManualPageHasEveryCommandAndOption() throws {
        let result = try PlexusProcess.plexus(["--generate-manual"])
        XCTAssertEqual(result.status, 0, result.standardError)
        let page = result.standardOutput
        XCTAssertTrue(page.hasPrefix(".TH PLEXUS 1 "), String(page.prefix(80)))
        for section in ["NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "EXIT STATUS"] {
            XCTAssertTrue(page.contains("\n.SH \(section)\n"), section)
        }
        for status in [0, 1, 2, 3, 75] { XCTAssertTrue(page.contains("\n.B \(status)\n"), "exit status \(status)") }
        for command in try commands() {
            if !command.path.isEmpty {
                XCTAssertTrue(page.contains(".SS \"\((["plexus"] + command.path).joined(separator: " "))\""), "\(command.path)")
            }
            for option in command.options where option != "--help" && option != "--version" || command.path.isEmpty {
                XCTAssertTrue(page.contains("\\fB" + option.replacingOccurrences(of: "-", with: "\\-") + "\\fR"),
                              "\(command.path) \(option)")
            }
        }
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/groff") {
            let file = (directory as NSString).appendingPathComponent("plexus.1")
            try page.write(toFile: file, atomically: true, encoding: .utf8)
            let render = try PlexusProcess.run("/usr/bin/groff", ["-man", "-Tutf8", "-ww", "-z", file])
            XCTAssertEqual(render.status, 0)
            XCTAssertEqual(render.standardError, "", "groff warnings")
        }
    }

    func testConfigPrintsWhatTrainWritesOrTheFirstMistake() throws {
        let data = (directory as NSString).appendingPathComponent("d.csv")
        try "x1,x2,label\n0.5,1,0\n1.5,2,1\n-1,0.25,2\n3,1,0\n".write(toFile: data, atomically: true, encoding: .utf8)
        let config = (directory as NSString).appendingPathComponent("c.yaml")
        try "data: {train: \(data)}\nmodel: {layers: [{units: 3}]}\ntraining: {epochs: 1, batch_size: 2, threads: 1}\n"
            .write(toFile: config, atomically: true, encoding: .utf8)
        let overrides = ["--set", "optimizer.name=sgd", "--set", "training.early_stopping={patience: 2}",
                         "--set", "data.validation_fraction=0.5"]
        let resolved = try PlexusProcess.plexus(["config", config] + overrides)
        XCTAssertEqual(resolved.status, 0, resolved.standardError)
        XCTAssertEqual(resolved.standardError, "")
        XCTAssertTrue(resolved.standardOutput.contains("  momentum: 0.0\n"), resolved.standardOutput)
        let run = (directory as NSString).appendingPathComponent("run")
        let train = try PlexusProcess.plexus(["train", config, "--run-dir", run, "--progress", "plain"] + overrides)
        XCTAssertEqual(train.status, 0, train.standardError)
        XCTAssertEqual(try String(contentsOfFile: run + "/config.yaml", encoding: .utf8), resolved.standardOutput)

        let mistake = try PlexusProcess.plexus(["config", config, "--set", "optimizer.lr=0"])
        XCTAssertEqual(mistake.status, 2)
        XCTAssertEqual(mistake.standardError.split(separator: "\n").count, 1, mistake.standardError)
        XCTAssertTrue(mistake.standardError.contains("optimizer.lr: must be greater than 0"), mistake.standardError)
        try assertUsageMistake(["config", config, "--reference"],
                               line: "plexus config: --reference takes no config file and no --set (see 'plexus config --help')")

        let reference = try PlexusProcess.plexus(["config", "--reference"])
        XCTAssertEqual(reference.status, 0, reference.standardError)
        XCTAssertEqual(reference.standardOutput,
                       try String(contentsOfFile: PlexusProcess.root + "/docs/configuration.md", encoding: .utf8))
    }

    /// docs/command-line.md describes every subcommand and option the binary has.
    func testCommandLinePageNamesEveryCommandAndOption() throws {
        let page = try String(contentsOfFile: PlexusProcess.root + "/docs/command-line.md", encoding: .utf8)
        for command in try commands() {
            let name = (["plexus"] + command.path).joined(separator: " ")
            XCTAssertTrue(page.contains("`\(name)"), "docs/command-line.md lacks \(name)")
            for option in command.options where option != "--help" && option != "--version" {
                XCTAssertTrue(page.contains(option), "docs/command-line.md lacks \(name) \(option)")
            }
        }
        for status in [0, 1, 2, 3, 75] { XCTAssertTrue(page.contains("| \(status) |"), "docs/command-line.md lacks exit status \(status)") }
    }
}
