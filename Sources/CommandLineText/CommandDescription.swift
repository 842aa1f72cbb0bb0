import Foundation

/// A command as ArgumentParser describes it (the JSON of `--experimental-dump-help`, its serialization version 0):
/// name, texts, arguments and subcommands. The man page and the usage checks read the definitions through it.
public struct CommandDescription: Decodable {
    let commandName: String
    let abstract: String?
    let discussion: String?
    let shouldDisplay: Bool
    let arguments: [ArgumentDescription]
    let subcommands: [CommandDescription]

    /// Decodes the JSON ArgumentParser dumps for the root command (`Command._dumpHelp()`).
    public init(dumpedHelp json: String) throws {
        struct Document: Decodable { let command: CommandDescription }
        self = try JSONDecoder().decode(Document.self, from: Data(json.utf8)).command
    }

    enum CodingKeys: String, CodingKey { case commandName, abstract, discussion, shouldDisplay, arguments, subcommands }

    /// Decodes one command of the dump; absent texts and lists are empty.
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        commandName = try container.decode(String.self, forKey: .commandName)
        abstract = try container.decodeIfPresent(String.self, forKey: .abstract).flatMap { $0.isEmpty ? nil : $0 }
        discussion = try container.decodeIfPresent(String.self, forKey: .discussion).flatMap { $0.isEmpty ? nil : $0 }
        shouldDisplay = try container.decodeIfPresent(Bool.self, forKey: .shouldDisplay) ?? true
        arguments = try container.decodeIfPresent([ArgumentDescription].self, forKey: .arguments) ?? []
        subcommands = try container.decodeIfPresent([CommandDescription].self, forKey: .subcommands) ?? []
    }

    /// The subcommands a user is shown (not hidden ones).
    var visibleSubcommands: [CommandDescription] { subcommands.filter(\.shouldDisplay) }

    /// The subcommand named `name`, hidden ones included.
    func subcommand(_ name: String) -> CommandDescription? { subcommands.first { $0.commandName == name } }
}

/// An argument of a command: a positional value, an option that takes a value, or a flag.
struct ArgumentDescription: Decodable {
    enum Kind: String, Decodable { case positional, option, flag }

    /// One spelling: `--run-dir` (long), `-h` (short), `-help` (long with a single dash).
    struct Name: Decodable, Equatable {
        let kind: String
        let name: String

        /// As typed on the command line.
        var spelling: String { kind == "short" || kind == "longWithSingleDash" ? "-" + name : "--" + name }
    }

    let kind: Kind
    let names: [Name]
    let shouldDisplay: Bool
    let abstract: String?
    let discussion: String?
    let valueName: String?
    let isOptional: Bool
    let isRepeating: Bool
    let defaultValue: String?
    let allValues: [String]?

    enum CodingKeys: String, CodingKey {
        case kind, names, shouldDisplay, abstract, discussion, valueName, isOptional, isRepeating, defaultValue, allValues
    }

    init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        kind = try container.decode(Kind.self, forKey: .kind)
        names = try container.decodeIfPresent([Name].self, forKey: .names) ?? []
        shouldDisplay = try container.decodeIfPresent(Bool.self, forKey: .shouldDisplay) ?? true
        abstract = try container.decodeIfPresent(String.self, forKey: .abstract).flatMap { $0.isEmpty ? nil : $0 }
        discussion = try container.decodeIfPresent(String.self, forKey: .discussion).flatMap { $0.isEmpty ? nil : $0 }
        valueName = try container.decodeIfPresent(String.self, forKey: .valueName)
        isOptional = try container.decodeIfPresent(Bool.self, forKey: .isOptional) ?? false
        isRepeating = try container.decodeIfPresent(Bool.self, forKey: .isRepeating) ?? false
        defaultValue = try container.decodeIfPresent(String.self, forKey: .defaultValue)
        allValues = try container.decodeIfPresent([String].self, forKey: .allValues)
    }

    /// The spelling help shows first: the first long name, else the first name.
    var preferredSpelling: String? { (names.first { $0.kind == "long" } ?? names.first)?.spelling }
}
