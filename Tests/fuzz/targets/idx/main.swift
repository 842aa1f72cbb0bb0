// libFuzzer target: IDX files as stored (plain or gzipped) → IDX.decode → Dataset.fromIDX.
// Built by Tests/fuzz/run.sh together with the reader sources it lists for `idx`.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
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
        var rows: [Int32] = [0, Int32(dataset.count - 1)]
        var features = [Float](repeating: 0, count: rows.count * dataset.featureCount)
        var labelOut = [Float](repeating: 0, count: rows.count)
        rows.withUnsafeMutableBufferPointer { rows in
            features.withUnsafeMutableBufferPointer { out in
                labelOut.withUnsafeMutableBufferPointer { dataset.gather(rows: UnsafeBufferPointer(rows), features: out.baseAddress!, labels: $0.baseAddress!) }
            }
        }
        _ = try? Dataset.fromIDX(images: labels, labels: array, imagesPath: "images", labelsPath: "labels")
    }
    return 0
}
