import Datasets
import Support

// `data.train`, `data.test` and `data.validation` as the config writes them: a path (or a glob pattern of shards),
// a list of shards, `{x: X.npy, y: Y.npy}`, or `{file: PATH_OR_LIST, x: NAME, y: NAME}`; `evaluate --data` and
// `predict --input` take the same text.

extension DataLocation: ConfigScalar {
    static var referenceType: String { "string, list or map" }

    static func read(_ key: String, from section: ConfigReader.Section) throws -> DataLocation? {
        guard let tree = section.value(key) else { return nil }
        return try DataLocation(tree, location: section.location(tree, key))
    }

    /// The location a config value describes; `location` ("file:line: data.train") names it in errors.
    init(_ tree: ConfigTree, location: String) throws {
        func path(_ tree: ConfigTree) throws -> String {
            guard case let .scalar(text, _, _) = tree, !text.isEmpty else {
                throw UserError("\(location): expected a file name, got " + (tree.isScalar ? "an empty one" : "a list or mapping"))
            }
            return text
        }
        func paths(_ tree: ConfigTree) throws -> [String] {
            guard case let .sequence(items, _) = tree else { return [try path(tree)] }
            guard !items.isEmpty else { throw UserError("\(location): an empty list of files") }
            return try items.map(path)
        }
        switch tree {
        case .scalar: self = .path(try path(tree))
        case .sequence: self = .shards(try paths(tree))
        case let .mapping(pairs, _):
            let known = ["file", "x", "y"]
            for (key, _) in pairs where !known.contains(key) {
                throw UserError("\(location): unknown key \(quotedForMessage(key)) (expected {x: X.npy, y: Y.npy} or "
                    + "{file: FILE, x: NAME, y: NAME})")
            }
            let value = { (key: String) in pairs.first { $0.key == key }?.value }
            if let file = value("file") {
                self = .arrays(files: try paths(file), features: try value("x").map(path) ?? "x", targets: try value("y").map(path) ?? "y")
            } else {
                guard let features = value("x") else {
                    throw UserError("\(location): expected {x: X.npy, y: Y.npy} (.npy files) or {file: FILE, x: NAME, y: NAME}")
                }
                self = .pair(features: try path(features), targets: try value("y").map(path))
            }
        }
    }

    /// What `evaluate --data` and `predict --input` take: a path or pattern, or the YAML text of a list or mapping
    /// as in the config (`'{x: test_x.npy, y: test_y.npy}'`); `option` names the option in errors.
    public init(commandLine text: String, option: String) throws {
        let trimmed = text.drop { $0 == " " }
        guard trimmed.first == "{" || trimmed.first == "[" else {
            self = .path(text)
            return
        }
        self = try DataLocation(try ConfigTree.parse(text, source: option), location: option)
    }
}

extension ConfigTree {
    var isScalar: Bool {
        if case .scalar = self { return true }
        return false
    }
}
