// Fuzz target: safetensors bytes → SafeTensors.decode; whatever decodes must survive encode → decode unchanged.
@testable import Formats
import FuzzSupport

runFuzzer { data, size in
    let bytes = fuzzBytes(data, size)
    // The same file must always give the same message (no dependence on dictionary order).
    func outcome() -> String {
        do { return "\(try SafeTensors.decode(bytes, path: "fuzz.safetensors").tensors.map(\.name))" } catch { return "\(error)" }
    }
    let first = outcome(), second = outcome()
    precondition(first == second, "SafeTensors.decode is not deterministic: \(first) vs \(second)")
    expectUserErrorOnly("SafeTensors.decode") {
        let decoded = try SafeTensors.decode(bytes, path: "fuzz.safetensors")
        _ = SafeTensors.sha256OfValues(decoded.tensors)
        let again = try SafeTensors.decode(SafeTensors.encode(decoded.tensors, metadata: decoded.metadata), path: "re-encoded")
        precondition(again.metadata == decoded.metadata, "safetensors round trip changed the metadata")
        precondition(again.tensors.count == decoded.tensors.count, "safetensors round trip changed the tensor count")
        for (a, b) in zip(again.tensors, decoded.tensors) {
            precondition(a.name == b.name && a.shape == b.shape
                         && a.values.map(\.bitPattern) == b.values.map(\.bitPattern),
                         "safetensors round trip changed tensor \(b.name.debugDescription)")
        }
    }
    return 0
}
