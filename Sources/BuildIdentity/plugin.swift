import Foundation
import PackagePlugin

/// Writes `BuildIdentity.swift` into the target it is applied to: the VERSION file and `git describe` of the package's
/// checkout at build time (nil in a build outside a git checkout, e.g. from a source tarball), for `plexus --version`.
/// build-identity.sh beside this file does it.
///
/// A build command rather than Package.swift: SwiftPM caches the manifest's evaluation, so a value Package.swift
/// computes would stay at the commit of its first build; and a prebuild command runs only when SwiftPM plans the
/// build anew. This command runs again whenever git's state (HEAD, the index, refs) or a source file changes.
@main
struct BuildIdentity: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let root = context.package.directoryURL
        let output = context.pluginWorkDirectoryURL.appendingPathComponent("BuildIdentity.swift")
        let sources = context.package.targets.compactMap { $0 as? SourceModuleTarget }.flatMap { $0.sourceFiles.map(\.url) }
        let script = root.appendingPathComponent("Sources/BuildIdentity/build-identity.sh")
        let inputs = [script, root.appendingPathComponent("VERSION"), root.appendingPathComponent("Package.swift")]
            + gitState(of: root) + sources
        return [.buildCommand(displayName: "Stamping the build with VERSION and git describe",
                              executable: URL(fileURLWithPath: "/bin/sh"), arguments: [script.path, root.path, output.path],
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
}
