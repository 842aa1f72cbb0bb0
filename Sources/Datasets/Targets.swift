import Support

/// Names for `count` unnamed targets: `base` alone for one, `base_0`, `base_1`, ... for several.
public func defaultTargetNames(count: Int, base: String) -> [String] {
    count == 1 ? [base] : (0..<count).map { "\(base)_\($0)" }
}

extension Dataset {
    /// Checks every target is 0 or 1 (multi-label classification); the first other value is a `UserError` naming its row.
    public func validateBinaryTargets() throws {
        for (index, value) in targets.enumerated() where value != 0 && value != 1 {
            let row = index / targetCount, target = index % targetCount
            throw UserError("\(location(ofRow: row)): target \(quotedForMessage(targetNames[target])) is \(value); "
                + "binary_cross_entropy needs 0 or 1")
        }
    }
}
