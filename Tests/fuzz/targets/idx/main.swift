// Fuzz target: IDX files as stored (plain or gzipped) → IDX.decode → Dataset.fromIDX.
@testable import Datasets
@testable import Formats
import FuzzSupport

runFuzzer { data, size in
    let bytes = fuzzBytes(data, size)
    expectUserErrorOnly("IDX.decode") {
        let array = try IDX.decode(bytes, path: "fuzz-images-idx3-ubyte")
        var product = 1
        for dimension in array.dimensions { product = product.multipliedReportingOverflow(by: dimension).partialValue }
        precondition(array.bytes.count == product, "IDX.decode: \(array.bytes.count) bytes for dimensions \(array.dimensions)")
        // The same bytes as a labels file, and as images with labels of matching length.
        let itemCount = min(array.dimensions[0], 1 << 16)
        let labels = IDXArray(dimensions: [itemCount], bytes: [UInt8](repeating: 3, count: itemCount))
        let dataset = try Dataset.fromIDX(images: array, labels: labels, imagesPath: "images", labelsPath: "labels")
        try dataset.validateClassLabels(classCount: 10)
        try dataset.applyNormalization(.standardize)
        dataset.limit(to: 2)
        gatherFirstAndLast(dataset)
        _ = try? Dataset.fromIDX(images: labels, labels: array, imagesPath: "images", labelsPath: "labels")
    }
    return 0
}
