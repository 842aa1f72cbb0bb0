import Datasets
import Foundation
import NeuralNet
import Support

// The model file's target metadata: `plexus.targets` (JSON list of names, output order), `plexus.target_normalization`
// with `plexus.target_mean` and `plexus.target_std` for standardize, and `plexus.loss_delta` for huber. Files written
// before targets had names read as one target named `label`, not normalized.
extension ModelFile {
    /// Adds the targets' names and normalization, and the loss options, to a model file's metadata.
    static func addTargetMetadata(to metadata: inout [String: String], loss: LossOptions, normalization: NormalizationRecord) {
        metadata["plexus.targets"] = JSON.text(normalization.targetNames)
        metadata["plexus.target_normalization"] = normalization.targetMode.rawValue
        if normalization.targetMode == .standardize {
            metadata["plexus.target_mean"] = jsonArray(normalization.targetMean)
            metadata["plexus.target_std"] = jsonArray(normalization.targetStandardDeviation)
        }
        if loss.kind == .huber { metadata["plexus.loss_delta"] = "\(loss.delta)" }
    }

    /// Reads what `addTargetMetadata` wrote into `normalization` and returns the loss with its options.
    static func readTargetMetadata(_ metadata: [String: String], lossKind: Loss, outputWidth: Int,
                                   into normalization: inout NormalizationRecord, path: String) throws -> LossOptions {
        func corrupt(_ key: String) -> UserError { UserError("\(path): corrupt plexus metadata: \(key)") }
        let targetCount = lossKind.targetWidth(outputWidth: outputWidth)
        if let text = metadata["plexus.targets"] {
            guard let names = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String], names.count == targetCount,
                  Set(names).count == names.count else { throw corrupt("plexus.targets") }
            normalization.targetNames = names
        } else {
            normalization.targetNames = defaultTargetNames(count: targetCount, base: "label")
        }
        guard let mode = TargetNormalization(rawValue: metadata["plexus.target_normalization"] ?? "none") else {
            throw corrupt("plexus.target_normalization")
        }
        normalization.targetMode = mode
        if mode == .standardize {
            normalization.targetMean = try floatArray(metadata, "plexus.target_mean", count: targetCount, path: path)
            normalization.targetStandardDeviation = try floatArray(metadata, "plexus.target_std", count: targetCount, path: path)
        }
        var loss = LossOptions(kind: lossKind)
        if lossKind == .huber, let text = metadata["plexus.loss_delta"] {
            guard let delta = Float(text), delta.isFinite, delta > 0 else { throw corrupt("plexus.loss_delta") }
            loss.delta = delta
        }
        return loss
    }

    /// The JSON list of `count` numbers under `key`; anything else is a `UserError` naming the file and key.
    static func floatArray(_ metadata: [String: String], _ key: String, count: Int, path: String) throws -> [Float] {
        guard let text = metadata[key],
              let list = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [NSNumber], list.count == count else {
            throw UserError("\(path): \(metadata[key] == nil ? "not a plexus model (no \(key) in __metadata__)" : "corrupt plexus metadata: \(key)")")
        }
        return list.map { $0.floatValue }
    }
}
