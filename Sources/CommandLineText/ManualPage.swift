import Foundation

// The man page is written from the same definitions as --help (the command tree ArgumentParser dumps): one page,
// plexus(1), with every visible subcommand's synopsis, description and options, then the exit statuses.

/// The exit statuses every command ends with, as the man page lists them.
private let exitStatuses: [(status: Int, meaning: String)] = [
    (0, "Success."),
    (1, "An internal failure, a stalled collective or a lost rank."),
    (2, "A usage mistake or a mistake in the input (config, data, model file), or a full disk: one line on standard "
        + "error names the file and line, the config key or the option."),
    (3, "Training diverged: a loss or gradient that is not finite."),
    (75, "Training stopped by SIGUSR1, SIGTERM or SIGINT after saving a checkpoint; plexus train --resume continues it."),
]

/// plexus(1) in roff (man(7) macros) for `root`, the tree of this build.
public func manualPage(for root: CommandDescription) -> String {
    let name = root.commandName
    var lines = [
        ".TH \(name.uppercased()) 1 \"\" \"\(escaped(name + " " + buildVersion))\" \"User Commands\"",
        ".SH NAME",
        "\(escaped(name)) \\- \(escaped(root.abstract ?? ""))",
        ".SH SYNOPSIS",
    ]
    for command in root.visibleSubcommands where command.commandName != "help" {
        lines += commandSynopsis(command, name: "\(name) \(command.commandName)") + [".br"]
    }
    lines += [".B \(escaped(name))", "\\fB\\-\\-version\\fR | \\fB\\-\\-help\\fR | \\fBhelp\\fR [\\fIsubcommand\\fR ...]"]
    lines += [".SH DESCRIPTION"] + paragraphs(root.discussion ?? root.abstract ?? "")
    lines += paragraphs("Every command also takes -h and --help (its help) and --version; plexus help SUBCOMMAND ... "
                        + "shows a subcommand's help.")
    lines += [".SH OPTIONS"] + options(of: root, includingBuiltIns: true)
    lines += [
        ".TP", "\\fB\\-\\-generate\\-completion\\-script\\fR \\fIshell\\fR",
        "Print the completion script for bash, zsh or fish.",
    ]
    lines.append(".SH COMMANDS")
    lines += commandSections(of: root, name: name)
    lines.append(".SH EXIT STATUS")
    for (status, meaning) in exitStatuses { lines += [".TP", ".B \(status)", escaped(meaning)] }
    lines += [
        ".SH ENVIRONMENT",
        ".TP", ".B PLEXUS_KERNEL",
        escaped("auto (the default: the widest kernel variant this build and CPU run), avx2 or avx512."),
        ".SH SEE ALSO",
        ".BR mpirun (1)",
    ]
    return lines.joined(separator: "\n") + "\n"
}

/// A section per visible subcommand, depth first (`plexus bench gemm` after `plexus bench`).
private func commandSections(of command: CommandDescription, name: String) -> [String] {
    command.visibleSubcommands.filter { $0.commandName != "help" }.flatMap { subcommand -> [String] in
        let full = "\(name) \(subcommand.commandName)"
        var lines = [".SS \"\(escaped(full))\""] + commandSynopsis(subcommand, name: full)
        lines += paragraphs(subcommand.abstract ?? "")
        if let discussion = subcommand.discussion { lines += paragraphs(discussion) }
        if !subcommand.subcommands.isEmpty {
            lines += [".PP", "Subcommands: " + subcommand.visibleSubcommands.map { "\\fB\(escaped($0.commandName))\\fR" }
                .joined(separator: ", ") + "."]
        }
        lines += options(of: subcommand, includingBuiltIns: false)
        return lines + commandSections(of: subcommand, name: full)
    }
}

/// The usage line: `plexus train` *config* [--run-dir *run-dir*] ...
private func commandSynopsis(_ command: CommandDescription, name: String) -> [String] {
    let words = command.arguments.filter { $0.shouldDisplay && !isBuiltIn($0) }.map { argument -> String in
        let value = "\\fI\(escaped(argument.valueName ?? "value"))\\fR"
        var text: String
        switch argument.kind {
        case .positional: text = value
        case .option: text = "\\fB\(escaped(argument.preferredSpelling ?? ""))\\fR \(value)"
        case .flag: text = "\\fB\(escaped(argument.preferredSpelling ?? ""))\\fR"
        }
        if argument.isRepeating { text += " ..." }
        return argument.isOptional ? "[\(text)]" : text
    }
    let subcommand = command.subcommands.isEmpty ? [] : ["\\fIsubcommand\\fR"]
    return [".B \(escaped(name))", (subcommand + words).joined(separator: " ")]
}

/// A tagged paragraph per visible argument (--help and --version only if `includingBuiltIns`): its spellings and
/// value, its help, its default and choices.
private func options(of command: CommandDescription, includingBuiltIns: Bool) -> [String] {
    command.arguments.filter { $0.shouldDisplay && (includingBuiltIns || !isBuiltIn($0)) }.flatMap { argument -> [String] in
        let value = "\\fI\(escaped(argument.valueName ?? "value"))\\fR"
        let spellings = argument.names.map { "\\fB\(escaped($0.spelling))\\fR" }.joined(separator: ", ")
        let tag: String
        switch argument.kind {
        case .positional: tag = value
        case .option: tag = spellings + " " + value
        case .flag: tag = spellings
        }
        var text = argument.abstract ?? ""
        if let values = argument.allValues, !values.isEmpty { text += " One of: " + values.joined(separator: ", ") + "." }
        if let defaultValue = argument.defaultValue, argument.kind != .flag { text += " Default: \(defaultValue)." }
        var lines = [".TP", tag, escaped(text.trimmingCharacters(in: .whitespaces))]
        if let discussion = argument.discussion { lines += paragraphs(discussion) }
        return lines
    }
}

/// -h/--help and --version, which ArgumentParser gives every command.
private func isBuiltIn(_ argument: ArgumentDescription) -> Bool {
    argument.kind == .flag && argument.names.contains { $0.name == "help" || $0.name == "version" }
}

/// Blank-line separated blocks as paragraphs; a block of indented lines stays as written.
private func paragraphs(_ text: String) -> [String] {
    text.components(separatedBy: "\n\n").filter { !$0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty }
        .flatMap { block -> [String] in
            let blockLines = block.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            if blockLines.allSatisfy({ $0.hasPrefix(" ") }) {
                return [".PP", ".nf"] + blockLines.map(escaped) + [".fi"]
            }
            return [".PP", escaped(blockLines.map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " "))]
        }
}

/// `text` safe in roff: backslashes and hyphens escaped, no line starting with a control character.
private func escaped(_ text: String) -> String {
    let body = text.replacingOccurrences(of: "\\", with: "\\e").replacingOccurrences(of: "-", with: "\\-")
    return body.hasPrefix(".") || body.hasPrefix("'") ? "\\&" + body : body
}
