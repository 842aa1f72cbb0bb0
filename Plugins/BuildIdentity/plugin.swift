import Foundation
import PackagePlugin

/// Writes `BuildIdentity.swift` into the target it is applied to: the VERSION file and `git describe` of the package's
/// checkout at build time (nil in a build outside a git checkout, e.g. from a source tarball), for `plexus --version`.
///
/// A build command rather than Package.swift: SwiftPM caches the manifest's evaluation, so a value Package.swift
/// computes would stay at the commit of its first build. The command runs again whenever git's state (HEAD, the index,
/// refs) or a source file changes, and rewrites its output only when the text changes, so an unchanged build stays
/// up to date.
@main
struct BuildIdentity: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let root = context.package.directoryURL
        let output = context.pluginWorkDirectoryURL.appendingPathComponent("BuildIdentity.swift")
        let sources = context.package.targets.compactMap { $0 as? SourceModuleTarget }.flatMap { $0.sourceFiles.map(\.url) }
        let inputs = [root.appendingPathComponent("VERSION"), root.appendingPathComponent("Package.swift")]
            + gitState(of: root) + sources
        return [.buildCommand(displayName: "Stamping the build with VERSION and git describe",
                              executable: URL(fileURLWithPath: "/bin/sh"),
                              arguments: ["-c", Self.script, "build-identity", root.path, output.path],
                              inputFiles: inputs, outputFiles: [output])]
    }

    /// The files and directories of a checkout's git state whose changes can change `git describe --dirty`: the git
    /// directory (HEAD and the index are replaced there on commit and checkout), the common one of a worktree, and
    /// its refs. Empty outside a git checkout.
    func gitState(of root: URL) -> [URL] {
        let dotGit = root.appendingPathComponent(".git")
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dotGit.path, isDirectory: &isDirectory) else { return [] }
        var gitDirectory = dotGit
        if !isDirectory.boolValue {
            // A worktree or submodule: `.git` is a file saying `gitdir: PATH`.
            guard let text = try? String(contentsOf: dotGit, encoding: .utf8),
                  let line = text.split(separator: "\n").first(where: { $0.hasPrefix("gitdir: ") }) else { return [] }
            let path = String(line.dropFirst("gitdir: ".count)).trimmingCharacters(in: .whitespaces)
            gitDirectory = path.hasPrefix("/") ? URL(fileURLWithPath: path) : root.appendingPathComponent(path)
        }
        var common = gitDirectory
        if let text = try? String(contentsOf: gitDirectory.appendingPathComponent("commondir"), encoding: .utf8) {
            let path = text.trimmingCharacters(in: .whitespacesAndNewlines)
            common = path.hasPrefix("/") ? URL(fileURLWithPath: path) : gitDirectory.appendingPathComponent(path)
        }
        let candidates = [gitDirectory, gitDirectory.appendingPathComponent("HEAD"), gitDirectory.appendingPathComponent("index"),
                          common, common.appendingPathComponent("refs/heads"), common.appendingPathComponent("refs/tags")]
        return candidates.filter { FileManager.default.fileExists(atPath: $0.path) }
    }

    /// `sh -c SCRIPT build-identity ROOT OUTPUT`. `git describe` only when ROOT is the top of its own checkout (not a
    /// tarball unpacked inside another repository); --no-optional-locks keeps it from rewriting the index it watches.
    /// Values keep only characters that need no escaping in a Swift string.
    static let script = #"""
        root="$1" output="$2"
        version="$(tr -cd 'A-Za-z0-9._+-' < "$root/VERSION" 2>/dev/null)"
        description=""
        top="$(git -C "$root" rev-parse --show-toplevel 2>/dev/null)" || top=""
        if [ -n "$top" ] && [ "$(cd "$top" && pwd -P)" = "$(cd "$root" && pwd -P)" ]; then
            description="$(git -C "$root" --no-optional-locks describe --tags --always --dirty 2>/dev/null | tr -cd 'A-Za-z0-9._+/-')"
        fi
        if [ -n "$description" ]; then description="\"$description\""; else description=nil; fi
        text="// Written by Plugins/BuildIdentity at build time.
        /// The VERSION file of the source tree this binary was built from.
        let buildVersion = \"${version:-unknown}\"
        /// \`git describe --tags --always --dirty\` of that tree, nil when it was not a git checkout.
        let buildGitDescription: String? = $description"
        if [ ! -f "$output" ] || [ "$(cat "$output")" != "$text" ]; then printf '%s\n' "$text" > "$output"; fi
        """#
}
