import Foundation
import Support

// A usage mistake ends every command the same way: one line on stderr, exit status 2. The line names the command it
// concerns and, for a mistyped subcommand or option, the closest valid one:
//   plexus: unknown subcommand 'trian'; did you mean 'train'?
//   plexus train: unknown option '--run-directory'; did you mean '--run-dir'?
//   plexus train: unknown option '--epochs'; did you mean '--set training.epochs=3'?

/// The one line for a usage mistake ArgumentParser reported as `message` for `arguments` (the program name left out):
/// an unknown subcommand or option with the closest valid name (or, on a command with `--set`, the closest of
/// `configKeys`), else `message` on one line after the command's name.
public func usageMistakeLine(_ arguments: [String], root: CommandDescription, message: String,
                             configKeys: [String]) -> String {
    let reached = walk(arguments, from: root)
    if let mistake = reached.mistake { return mistake }
    if let mistake = unknownOption(in: arguments[reached.next...], of: reached.command, named: reached.name,
                                   isRoot: reached.name == root.commandName, configKeys: configKeys) {
        return mistake
    }
    let text = message.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        .filter { !$0.isEmpty }.joined(separator: " ")
    return "\(reached.name): " + (text.first.map { $0.lowercased() + String(text.dropFirst()) } ?? "usage mistake")
        + " (see '\(reached.name) --help')"
}

/// The line for `help` followed by a name that is no command (`plexus help trian`), or nil when every name is known.
public func unknownHelpTopic(_ arguments: [String], root: CommandDescription) -> String? {
    walk(arguments, from: root).mistake
}

/// `arguments` with a `help` after subcommand names moved to the front (`bench help gemm` → `help bench gemm`), the
/// form ArgumentParser knows.
public func helpMovedToFront(_ arguments: [String], root: CommandDescription) -> [String] {
    var command = root
    for (index, token) in arguments.enumerated() {
        if token == "help", index > 0, command.subcommand("help") == nil {
            return ["help"] + arguments[..<index] + arguments[(index + 1)...]
        }
        guard let next = command.subcommand(token), !next.subcommands.isEmpty else { break }
        command = next
    }
    return arguments
}

/// The command the leading subcommand names of `arguments` reach, its full name (`plexus bench gemm`) and the index
/// of the first argument after them; `mistake` is the line for a name that is no subcommand. After `help` the names
/// are checked from the root: they say whose help to show.
private func walk(_ arguments: [String], from root: CommandDescription)
    -> (command: CommandDescription, name: String, next: Int, mistake: String?) {
    var command = root, name = root.commandName, index = 0
    while index < arguments.count, !command.subcommands.isEmpty {
        let token = arguments[index]
        if token.hasPrefix("-") { break }
        guard let next = command.subcommand(token) else {
            return (command, name, index, unknown("subcommand", token, among: command.visibleSubcommands.map(\.commandName),
                                                  in: name))
        }
        name += " " + token
        index += 1
        if next.commandName == "help" && next.subcommands.isEmpty {
            var topic = root
            for word in arguments[index...] where !word.hasPrefix("-") {
                guard let inner = topic.subcommand(word), inner.commandName != "help" else {
                    let names = topic.visibleSubcommands.map(\.commandName).filter { $0 != "help" }
                    return (next, name, arguments.count, unknown("subcommand", word, among: names, in: name))
                }
                topic = inner
            }
            return (next, name, arguments.count, nil)
        }
        command = next
    }
    return (command, name, index, nil)
}

/// The line for the first option among `arguments` that `command` does not take, or nil.
private func unknownOption(in arguments: ArraySlice<String>, of command: CommandDescription, named name: String,
                           isRoot: Bool, configKeys: [String]) -> String? {
    var kinds: [String: ArgumentDescription.Kind] = ["--experimental-dump-help": .flag]
    if isRoot { kinds["--generate-completion-script"] = .option }
    for argument in command.arguments where argument.kind != .positional {
        for spelling in argument.names.map(\.spelling) { kinds[spelling] = argument.kind }
    }
    var index = arguments.startIndex
    while index < arguments.endIndex {
        let token = arguments[index]
        index += 1
        if token == "--" { return nil }
        guard token.count > 1, token.hasPrefix("-"), Double(token) == nil else { continue }
        let spelling = token.hasPrefix("--") ? String(token.prefix { $0 != "=" }) : token
        if let kind = kinds[spelling] {
            if kind == .option && !token.contains("=") { index += 1 }  // its value
            continue
        }
        // Short flags written together (`-xy`): each must be one.
        let letters = token.hasPrefix("--") ? [] : token.dropFirst().map { "-\($0)" }
        if !letters.isEmpty, letters.allSatisfy({ kinds[$0] != nil }) {
            if kinds[letters.last!] == .option { index += 1 }
            continue
        }
        let names = command.arguments.filter { $0.kind != .positional && $0.shouldDisplay }
            .flatMap { $0.names.filter { $0.kind != "short" }.map(\.spelling) }
        var setting: String?
        if kinds["--set"] == .option, closestName(to: spelling, among: names) == nil {
            let value = token.contains("=") ? String(token.drop { $0 != "=" }.dropFirst())
                : index < arguments.endIndex && !arguments[index].hasPrefix("-") ? arguments[index] : nil
            setting = configKeySetting(spelling, value: value, keys: configKeys)
        }
        return unknown("option", spelling, among: names, in: name, otherwise: setting)
    }
    return nil
}

/// `--set KEY=VALUE` for the config key an option such as `--epochs` or `--batch-size` most likely means: the key
/// whose last name (when no other key has it) or whose dotted name is closest; nil when none is close.
private func configKeySetting(_ spelling: String, value: String?, keys: [String]) -> String? {
    let word = spelling.drop { $0 == "-" }.replacingOccurrences(of: "-", with: "_")
    let settable = keys.filter { !$0.contains("[") }
    var keyByName: [String: String] = [:]
    for (last, keys) in Dictionary(grouping: settable, by: { String($0.split(separator: ".").last ?? "") }) where keys.count == 1 {
        keyByName[last] = keys[0]
    }
    for key in settable { keyByName[key] = key }
    guard let match = closestName(to: word, among: keyByName.keys.sorted()), let key = keyByName[match] else { return nil }
    return "--set \(key)=\(escapedForMessage(value ?? "VALUE", limit: 80))"
}

/// "COMMAND: unknown WHAT 'GIVEN'; did you mean 'NAME'?" (or `otherwise`), else with the valid names listed.
private func unknown(_ what: String, _ given: String, among names: [String], in command: String,
                     otherwise alternative: String? = nil) -> String {
    let line = "\(command): unknown \(what) '\(escapedForMessage(given, limit: 80))'"
    if let match = closestName(to: given, among: names) ?? alternative { return line + "; did you mean '\(match)'?" }
    return line + " (\(what)s: \(names.joined(separator: ", ")))"
}

/// The name in `names` closest to `given` (leading dashes and case aside): within a third of its length in edits
/// (at least one; a swap of neighbours is one edit), or one of the two the start of the other; nil when none is.
func closestName(to given: String, among names: [String]) -> String? {
    func word(_ text: String) -> [Character] { Array(text.drop { $0 == "-" }.lowercased()) }
    let typed = word(given)
    var best: (name: String, distance: Int)?
    for name in names {
        let candidate = word(name)
        let shorter = min(typed.count, candidate.count)
        let distance = editDistance(typed, candidate)
        let isStart = shorter >= 3 && (typed.starts(with: candidate) || candidate.starts(with: typed))
        guard distance <= max(1, shorter / 3) || isStart else { continue }
        if best == nil || distance < best!.distance { best = (name, distance) }
    }
    return best?.name
}

/// Insertions, deletions, substitutions and swaps of neighbours that turn `a` into `b` (optimal string alignment).
func editDistance(_ a: [Character], _ b: [Character]) -> Int {
    if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
    var previousRow: [Int] = [], row = Array(0...b.count)
    for i in 1...a.count {
        let beforePrevious = previousRow
        previousRow = row
        row = [i] + [Int](repeating: 0, count: b.count)
        for j in 1...b.count {
            let cost = a[i - 1] == b[j - 1] ? 0 : 1
            row[j] = min(previousRow[j] + 1, row[j - 1] + 1, previousRow[j - 1] + cost)
            if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                row[j] = min(row[j], beforePrevious[j - 2] + 1)
            }
        }
    }
    return row[b.count]
}
