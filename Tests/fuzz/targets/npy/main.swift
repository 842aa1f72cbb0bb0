// Fuzz target: .npy bytes → NumPyFile (magic, version, header dict, dtype, shape against the file's size), every row
// read as Floats and viewed as bytes, then the file as both arrays of a data set (features and targets).
@testable import Datasets
@testable import Formats
import FuzzSupport

runFuzzer { data, size in
    let bytes = fuzzBytes(data, size)
    expectUserErrorOnly("NumPyFile") {
        let file = try NumPyFile(FileBytes(copying: bytes), path: "fuzz.npy")
        precondition(file.rowCount * file.rowWidth == file.header.elementCount, "rows do not cover the elements")
        var values = [Float](repeating: 0, count: file.rowCount * file.rowWidth)
        try values.withUnsafeMutableBufferPointer { try file.readRows(0..<file.rowCount, into: $0) }
        precondition(values.allSatisfy(\.isFinite), "a non-finite value was accepted")
        if let stored = file.byteRows(0..<file.rowCount) { precondition(stored.count == values.count, "byte rows") }
        let dataset = try Dataset.fromArrays(features: file, featuresWhat: "fuzz.npy", targets: file, targetsWhat: "fuzz.npy",
                                             pair: "fuzz.npy has \(file.rowCount) rows but fuzz.npy", base: "y",
                                             targetNames: nil, paths: ["fuzz.npy"])
        checkDataset(dataset)
        gatherFirstAndLast(dataset)
    }
    return 0
}
