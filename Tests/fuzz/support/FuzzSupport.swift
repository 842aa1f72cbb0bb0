// FuzzSupport: what every fuzz target (Tests/fuzz/targets/NAME/main.swift) shares — the libFuzzer driver and the
// check that bad input ends as a one-line UserError.
#if canImport(Glibc)
import Glibc
#endif
@testable import Support

/// PLEXUS_FUZZ_PRINT=1 prints each input's outcome (for choosing regression inputs: `BINARY FILE...`).
private let printOutcomes = getenv("PLEXUS_FUZZ_PRINT").map { String(cString: $0) == "1" } ?? false

/// Scalars that end a line in a terminal or in `lines()`-style readers: LF, VT, FF, CR, NEL, LS, PS.
public let lineBreaks: Set<UInt32> = [0x0A, 0x0B, 0x0C, 0x0D, 0x85, 0x2028, 0x2029]

@_silgen_name("LLVMFuzzerRunDriver")
private func runDriver(_ argc: UnsafeMutablePointer<Int32>,
                       _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                       _ body: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

/// Runs libFuzzer (its command line is this process's) with `body` as LLVMFuzzerTestOneInput, then exits.
public func runFuzzer(_ body: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Never {
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    exit(runDriver(&argc, &argv, body))
}

/// Runs `body`; a thrown `UserError` is the expected outcome for bad input, anything else is a bug.
@inline(never)
public func expectUserErrorOnly(_ what: String, _ body: () throws -> Void) {
    do {
        try body()
        if printOutcomes { print("OUTCOME \(what): ok") }
    } catch let error as UserError {
        if printOutcomes { print("OUTCOME \(what): \(error.message)") }
        // A user error must be one line (it is printed as "plexus: MESSAGE" and parsed by scripts).
        if error.message.unicodeScalars.contains(where: { lineBreaks.contains($0.value) }) {
            fatalError("\(what): UserError message spans several lines: \(error.message.debugDescription)")
        }
    } catch {
        fatalError("\(what): threw \(type(of: error)) instead of UserError: \(error)")
    }
}

/// The fuzzer's input as an array.
public func fuzzBytes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
    guard let data else { return [] }
    return Array(UnsafeBufferPointer(start: data, count: size))
}
