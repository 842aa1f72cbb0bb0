// libFuzzer target: UTF-8 text → TrainingConfig.parse (Yams → ConfigTree → strict decoding).
// A config that parses must also re-parse from its own `yaml` to the same config (config.yaml in a run
// directory is read back on resume).
// Built by Tests/fuzz/run.sh with Sources/Training/{UserError,Formats/FileIO,Config/*}.swift, Yams and NeuralNet.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
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
