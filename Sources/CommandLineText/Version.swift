/// CommandLineText: what the command line says beyond ArgumentParser's own help: the version, the one line for a
/// usage mistake (with the closest valid name) and the man page.

import Distributed
import Kernels

/// What `plexus --version` prints: the version and the commit it was built from, the kernel variants of the build and
/// of this CPU, and the MPI library of the build and of this run.
public func versionText() -> String {
    let source = buildGitDescription.map { "git \($0)" } ?? "built outside a git checkout"
    let runnable = KernelVariant.supported.isEmpty
        ? "none (the build needs vector instructions this CPU lacks)"
        : KernelVariant.supported.map(\.rawValue).joined(separator: ", ")
    return """
        plexus \(buildVersion) (\(source))
        kernels: \(KernelVariant.inBuild.map(\.rawValue).joined(separator: ", ")) in this build; this CPU runs \(runnable)
        MPI: built against \(MPILibrary.builtAgainst); loaded: \(MPILibrary.loaded)
        """
}

/// The version of this build (the VERSION file), e.g. for files that name their producer.
public var plexusVersion: String { buildVersion }
