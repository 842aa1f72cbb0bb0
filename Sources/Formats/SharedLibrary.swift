#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Support

/// A C library opened at run time by its soname (dlopen), so that building Plexus does not need it and a machine
/// without it fails only when a file needs it, with one line naming what to install.
public final class SharedLibrary: @unchecked Sendable {
    private let handle: UnsafeMutableRawPointer
    /// The soname that was opened.
    public let soname: String

    /// Opens the first of `sonames` that loads. When none does, the `UserError` says that `purpose` needs the
    /// library and how to get it (`install`, e.g. "apt-get install libzstd1").
    public init(sonames: [String], purpose: String, install: String) throws {
        for name in sonames {
            if let handle = dlopen(name, RTLD_NOW | RTLD_LOCAL) {
                self.handle = handle
                soname = name
                return
            }
        }
        let names = sonames.count == 1 ? sonames[0] : sonames.dropLast().joined(separator: ", ") + " or " + sonames.last!
        throw UserError("\(purpose) needs \(names), which is not installed (\(install))")
    }

    /// The function or variable `name` exports, as `type` (a `@convention(c)` function type or a pointer); a library
    /// without it (too old) is a `UserError` naming both.
    public func symbol<Symbol>(_ name: String, as type: Symbol.Type) throws -> Symbol {
        guard let address = dlsym(handle, name) else {
            throw UserError("\(soname) has no \(name) (the library is too old or not the expected one)")
        }
        return unsafeBitCast(address, to: type)
    }
}
