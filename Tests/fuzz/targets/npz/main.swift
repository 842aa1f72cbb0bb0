// libFuzzer target: .npz files as stored → Dataset.fromNPZ (ZipArchive: central directory, local headers, zip64,
// stored and deflated members with CRC-32; NumPyHeader: magic, version, header dict, dtype, shape), with and without
// y and with named targets, then normalization of features and targets, the multi-label check, limit and gather.
// Built by Tests/fuzz/run.sh together with the reader sources it lists for `npz`.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = fuzzBytes(data, size)
    for (names, requireTargets) in [(nil, true), (["a", "b"], false)] as [([String]?, Bool)] {
        expectUserErrorOnly("Dataset.fromNPZ") {
            let dataset = try Dataset.fromNPZ(FileBytes(copying: bytes), path: "fuzz.npz", targetNames: names,
                                              requireTargets: requireTargets)
            precondition(dataset.count > 0 && dataset.featureCount > 0 && dataset.targetCount > 0, "empty dataset accepted")
            precondition(dataset.targets.count == dataset.count * dataset.targetCount, "targets do not fit the rows")
            switch dataset.features {
            case let .bytes(values): precondition(values.count == dataset.count * dataset.featureCount, "feature bytes")
            case let .floats(values):
                precondition(values.count == dataset.count * dataset.featureCount, "feature floats")
                precondition(values.allSatisfy(\.isFinite), "non-finite feature accepted")
            }
            precondition(dataset.targets.allSatisfy(\.isFinite), "non-finite target accepted")
            try dataset.applyNormalization(.standardize)
            try dataset.applyTargetNormalization(.standardize)
            try? dataset.validateBinaryTargets()
            dataset.limit(to: 3)
            var rows: [Int32] = [0, Int32(dataset.count - 1)]
            var features = [Float](repeating: 0, count: rows.count * dataset.featureCount)
            var targets = [Float](repeating: 0, count: rows.count * dataset.targetCount)
            rows.withUnsafeMutableBufferPointer { rows in
                features.withUnsafeMutableBufferPointer { out in
                    targets.withUnsafeMutableBufferPointer {
                        dataset.gather(rows: UnsafeBufferPointer(rows), features: out.baseAddress!, labels: $0.baseAddress!)
                    }
                }
            }
        }
    }
    return 0
}
