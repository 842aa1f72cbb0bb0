// Fuzz target: UTF-8 text → TrainingConfig.parse (Yams → ConfigTree → strict decoding). A config that parses must
// also re-parse from its own `yaml` to the same config (config.yaml in a run directory is read back on resume).
@testable import Config
import FuzzSupport

runFuzzer { data, size in
    let text = String(decoding: fuzzBytes(data, size), as: UTF8.self)
    expectUserErrorOnly("TrainingConfig.parse") {
        let config = try TrainingConfig.parse(text, source: "fuzz.yaml")
        let resolved = config.yaml
        let again: TrainingConfig
        do {
            again = try TrainingConfig.parse(resolved, source: "config.yaml")
        } catch {
            fatalError("the resolved config does not parse again: \(error)\n\(resolved)")
        }
        precondition(again == config, "the resolved config parses to a different config:\n\(resolved)")
    }
    return 0
}
