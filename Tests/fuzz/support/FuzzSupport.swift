// Shared by every fuzz target (compiled into the same module as the reader sources and the target).
#if canImport(Glibc)
import Glibc
#endif

/// PLEXUS_FUZZ_PRINT=1 prints each input's outcome (for choosing regression inputs: `BINARY FILE...`).
private let printOutcomes = getenv("PLEXUS_FUZZ_PRINT").map { String(cString: $0) == "1" } ?? false

/// Scalars that end a line in a terminal or in `lines()`-style readers: LF, VT, FF, CR, NEL, LS, PS.
let lineBreaks: Set<UInt32> = [0x0A, 0x0B, 0x0C, 0x0D, 0x85, 0x2028, 0x2029]

/// Runs `body`; a thrown `UserError` is the expected outcome for bad input, anything else is a bug.
@inline(never)
func expectUserErrorOnly(_ what: String, _ body: () throws -> Void) {
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
func fuzzBytes(_ data: UnsafePointer<UInt8>, _ size: Int) -> [UInt8] {
    Array(UnsafeBufferPointer(start: data, count: size))
}
