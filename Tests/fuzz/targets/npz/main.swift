// Fuzz target: .npz files as stored → Dataset.fromNPZ (ZipArchive: central directory, local headers, zip64, stored
// and deflated members with CRC-32; NumPyHeader: magic, version, header dict, dtype, shape), with and without y and
// with named targets and arrays, then normalization of features and targets, the multi-label check, limit and gather.
@testable import Datasets
@testable import Formats
import FuzzSupport

runFuzzer { data, size in
    let bytes = fuzzBytes(data, size)
    let variants: [([String]?, Bool, (String?, String?))] = [(nil, true, (nil, nil)), (["a", "b"], false, (nil, nil)),
                                                             (nil, true, ("X", "y"))]
    for (names, requireTargets, arrays) in variants {
        expectUserErrorOnly("Dataset.fromNPZ") {
            let dataset = try Dataset.fromNPZ(FileBytes(copying: bytes), path: "fuzz.npz", targetNames: names,
                                              requireTargets: requireTargets, arrays: arrays)
            checkDataset(dataset)
            try dataset.applyNormalization(.standardize)
            try dataset.applyTargetNormalization(.standardize)
            try? dataset.validateBinaryTargets()
            dataset.limit(to: 3)
            gatherFirstAndLast(dataset)
        }
    }
    return 0
}
