@testable import Config
import Foundation
import XCTest

/// The reference (`plexus config --reference`, docs/configuration.md) against the decoder: both come from the key
/// tables, the decoder through each key's reader, the reference through its documentation.
final class ConfigReferenceTests: XCTestCase {
    let base = "data: {train: d.csv}\nmodel: {layers: [{units: 1}]}\n"
    let probe = "zzz_probe"

    /// A mapping of the config the probe can put keys into.
    struct Place {
        /// The mapping as the reference names it (`model.layers[]`); empty for the root.
        let name: String
        /// The mapping as the decoder's messages name it (`model.layers[0]`).
        let decoderName: String
        /// Whether keys go in by dotted `--set` paths (a section) or by rewriting the list item it is in.
        let dotted: Bool
        /// The `--set` overrides that put `key: value` pairs (YAML values) into this mapping.
        let set: ([(String, String)]) -> [String]
        /// Keys it needs (found by probing), each given the value 1.
        var required: [(String, String)] = []

        func child(_ key: String) -> String { name.isEmpty ? key : "\(name).\(key)" }
        func decoderChild(_ key: String) -> String { decoderName.isEmpty ? key : "\(decoderName).\(key)" }
    }

    static func flow(_ pairs: [(String, String)]) -> String { pairs.map { "\($0.0): \($0.1)" }.joined(separator: ", ") }

    /// The keys the decoder accepts in `place`'s mapping: the list its unknown-key error names, after adding a `1` for
    /// each key it first says is required; nil when the value there is read as no mapping.
    func acceptedKeys(in place: Place) -> (keys: [String], required: [(String, String)])? {
        var required: [(String, String)] = []
        for _ in 0..<8 {
            let message: String
            do {
                _ = try TrainingConfig.parse(base, source: "c.yaml", overrides: place.set(required + [(probe, "1")]))
                return nil
            } catch {
                message = String(describing: error)
            }
            if let range = message.range(of: "\(place.decoderChild(probe)): unknown key (known keys here: ") {
                return (message[range.upperBound...].dropLast().components(separatedBy: ", "), required)
            }
            guard let missing = message.range(of: #"[a-z_]+(?=: required)"#, options: .regularExpression),
                  message.contains("\(place.decoderChild(String(message[missing]))): required") else { return nil }
            required.append((String(message[missing]), "1"))
        }
        return nil
    }

    /// Every key the decoder accepts, named as the reference names them, found by probing from the root down.
    func keysTheDecoderAccepts() throws -> Set<String> {
        var found: Set<String> = []
        var places = [Place(name: "", decoderName: "", dotted: true, set: { $0.map { "\($0.0)=\($0.1)" } })]
        while var place = places.popLast() {
            let (keys, required) = try XCTUnwrap(acceptedKeys(in: place), "no unknown-key error at \(place.decoderName)")
            place.required = required
            for key in keys {
                found.insert(place.child(key))
                let parent = place
                // A section: a key inside it is read (and the probe rejected) there.
                var section = Place(name: place.child(key), decoderName: place.decoderChild(key), dotted: place.dotted,
                                    set: { pairs in parent.set(parent.required + [(key, "{\(Self.flow(pairs))}")]) })
                if place.dotted {
                    section = Place(name: section.name, decoderName: section.decoderName, dotted: true,
                                    set: { pairs in parent.set(pairs.map { ("\(key).\($0.0)", $0.1) }) })
                }
                if acceptedKeys(in: section) != nil {
                    places.append(section)
                    continue
                }
                // A list of mappings: each item is read as one.
                let item = Place(name: place.child(key) + "[]", decoderName: place.decoderChild(key) + "[0]", dotted: false,
                                 set: { pairs in parent.set(parent.required + [(key, "[{\(Self.flow(pairs))}]")]) })
                if acceptedKeys(in: item) != nil { places.append(item) }
            }
        }
        return found
    }

    func testReferenceListsExactlyTheKeysTheDecoderAccepts() throws {
        let accepted = try keysTheDecoderAccepts()
        let listed = Set(TrainingConfig.keyNames)
        XCTAssertEqual(listed.count, TrainingConfig.keyNames.count, "a key listed twice")
        XCTAssertEqual(accepted.subtracting(listed).sorted(), [], "keys the decoder accepts that the reference does not list")
        XCTAssertEqual(listed.subtracting(accepted).sorted(), [], "keys the reference lists that the decoder rejects")
        // The probe reaches nested sections and list items, so the comparison covers them.
        for name in ["data.normalize", "training.early_stopping.metric", "model.layers[].units", "model.init.weights", "loss.delta"] {
            XCTAssertTrue(accepted.contains(name), name)
        }
    }

    func testEveryKeySaysWhatItIs() {
        for row in TrainingConfig.referenceRows {
            let documentation = row.documentation
            XCTAssertFalse(documentation.type.isEmpty, "\(row.name): no type")
            XCTAssertFalse(documentation.defaultText.isEmpty, "\(row.name): no default")
            XCTAssertGreaterThan(documentation.meaning.count, 10, "\(row.name): no meaning")
            XCTAssertTrue(documentation.meaning.hasSuffix("."), "\(row.name): the meaning is a sentence ending in a period")
            XCTAssertFalse((documentation.type + documentation.defaultText + documentation.meaning).contains("\n"), row.name)
        }
    }

    /// A default the reference shows as one value is the value a config without the key resolves to.
    func testReferenceDefaultsAreTheResolvedOnes() throws {
        func flatten(_ pairs: [(String, ResolvedValue)], prefix: String) -> [String: String] {
            var values: [String: String] = [:]
            for (name, value) in pairs {
                switch value {
                case let .scalar(text): values[prefix + name] = text
                case let .mapping(inner): values.merge(flatten(inner, prefix: prefix + name + "."), uniquingKeysWith: { $1 })
                case .list: break
                }
            }
            return values
        }
        // Every optional section on, so its keys are resolved too (the keys set here are not compared).
        let overrides = ["data.validation_fraction=0.5", "training.early_stopping={}", "loss.name=huber"]
        let set = Set(overrides.flatMap { override -> [String] in
            let key = override.prefix { $0 != "=" }
            return [String(key), String(key.prefix { $0 != "." })]
        })
        let config = try TrainingConfig.parse(base, source: "c.yaml", overrides: overrides)
        let resolved = flatten(config.resolved, prefix: "")
        var compared = 0
        for row in TrainingConfig.referenceRows {
            let text = row.documentation.defaultText
            guard text.hasPrefix("`"), text.hasSuffix("`"), text.dropFirst().dropLast().allSatisfy({ $0 != "`" }),
                  let value = resolved[row.name], !set.contains(row.name) else { continue }
            XCTAssertEqual("`\(value)`", text, row.name)
            compared += 1
        }
        XCTAssertGreaterThan(compared, 30)
    }

    func testConfigurationPageIsTheGeneratedReference() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let page = try String(contentsOf: root.appendingPathComponent("docs/configuration.md"), encoding: .utf8)
        XCTAssertTrue(page == TrainingConfig.reference,
                      "docs/configuration.md is not what `plexus config --reference` prints; regenerate it from the "
                          + "repository root with: swift run plexus config --reference > docs/configuration.md")
    }
}
