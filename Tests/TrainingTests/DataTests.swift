@testable import Datasets
@testable import Formats
import Foundation
@testable import Training
import XCTest

final class DataTests: TemporaryDirectoryTestCase {
    // MARK: - CSV

    func testCSVParsesHeaderQuotesCRLFAndBlankLines() throws {
        let text = "\u{FEFF}\"x1\", label ,x2\r\n1,0,2.5\r\n\r\n -3.25 , \"1\" ,1e3\r\n4,2,-.5\r\n"
        let path = try write(text, "train.csv")
        let data = try Dataset.loadCSV(path: path)
        XCTAssertEqual(data.count, 3)
        XCTAssertEqual(data.featureCount, 2)
        XCTAssertEqual(data.featureNames, ["x1", "x2"])
        XCTAssertEqual(data.targets, [0, 1, 2])
        guard case let .floats(values) = data.features else { return XCTFail("expected float features") }
        XCTAssertEqual(values, [1, 2.5, -3.25, 1000, 4, -0.5])
        XCTAssertEqual(data.location(ofRow: 0), "\(path):2")
        XCTAssertEqual(data.location(ofRow: 1), "\(path):4", "blank line 3 is skipped but counted")
        XCTAssertEqual(data.location(ofRow: 2), "\(path):5")
        XCTAssertEqual(data.source, path)

        // No trailing newline, LF endings.
        let plain = try Dataset.loadCSV(path: write("label,a\n7,0.1\n8,0.2", "plain.csv"))
        XCTAssertEqual(plain.targets, [7, 8])
        XCTAssertEqual(plain.location(ofRow: 1), directory + "/plain.csv:3")
    }

    func testCSVNumberParsingMatchesFloatInitializer() throws {
        let samples = ["0", "-0", "1", "0.1", "123456.7", "3.4028235e38", "1e-45", "9999999", "16777217", "0.30000001",
                       "12345678.9", "0.00000000012", "+2.5", "1.", ".5", "-7.000000001", "255", "0.0039215689"]
        let text = "label," + samples.indices.map { "f\($0)" }.joined(separator: ",") + "\n0," + samples.joined(separator: ",") + "\n"
        let data = try Dataset.loadCSV(path: write(text, "numbers.csv"))
        guard case let .floats(values) = data.features else { return XCTFail("expected float features") }
        for (sample, value) in zip(samples, values) {
            XCTAssertEqual(value, Float(sample), sample)
        }
    }

    func testCSVErrorsNameFileAndLine() throws {
        let hint = " (list a text column under data.categorical)"
        let fill = " (set data.missing to mean, median or zero to fill gaps)"
        let cases: [(String, String)] = [
            ("", ": empty file (expected a header row naming the columns, including \"label\")"),
            ("\n  \n", ": empty file (expected a header row naming the columns, including \"label\")"),
            ("label,x\n", ": no data rows after the header on line 1"),
            ("\nlabel,x\n\n", ": no data rows after the header on line 2"),
            ("a,b,c\n1,2,3\n", ":1: no \"label\" column in the header; columns are: \"a\", \"b\", \"c\""),
            ("label\n1\n", ":1: the header has no feature columns besides \"label\""),
            ("label,x,x\n1,2,3\n", ":1: column \"x\" appears more than once in the header"),
            ("label,x1,x2,x3\n1,2,3,4\n\n1,2,3,abc\n", ":4: non-numeric value \"abc\" in column \"x3\"" + hint),
            ("label,x1\n1,2\nz,2\n", ":3: non-numeric value \"z\" in column \"label\""),
            ("label,x1,x2\n1,2,3\r\n1,2\r\n", ":3: expected 3 fields, got 2"),
            ("label,x1,x2\n1,2,3,4,5\n", ":2: expected 3 fields, got 5"),
            ("label,x1,x2\n1,,3\n", ":2: missing value in column \"x1\"" + fill),
            ("label,x1\n1,nan\n", ":2: missing value in column \"x1\"" + fill),
            ("label,x1\n1,inf\n", ":2: non-finite value \"inf\" in column \"x1\""),
            ("label,x1\n1,1e50\n", ":2: out-of-range value \"1e50\" in column \"x1\""),
            ("label,x1\n1,1.2.3\n", ":2: non-numeric value \"1.2.3\" in column \"x1\"" + hint),
            ("label,x1\n1,12abc\n", ":2: non-numeric value \"12abc\" in column \"x1\"" + hint),
            ("label,x1\n1,-\n", ":2: non-numeric value \"-\" in column \"x1\"" + hint),
            ("label,x1\n1,0x1p3\n", ":2: non-numeric value \"0x1p3\" in column \"x1\"" + hint),
            ("label,x1\n1,a\rb\n", ":2: non-numeric value \"a\\u{d}b\" in column \"x1\"" + hint),
            ("label,x1\n1,-infinity\n", ":2: non-finite value \"-infinity\" in column \"x1\""),
        ]
        for (index, (text, expected)) in cases.enumerated() {
            let path = try write(text, "case\(index).csv")
            XCTAssertEqual(errorMessage { try Dataset.loadCSV(path: path) }, path + expected, text)
        }
        let missing = directory + "/absent.csv"
        XCTAssertEqual(errorMessage { try Dataset.loadCSV(path: missing) }, "\(missing): no such file")
        XCTAssertTrue(errorMessage { try Dataset.loadCSV(path: self.directory) }.hasPrefix(directory + ": is a directory"))
    }

    func testCSVWithoutRequiredLabel() throws {
        let unlabeled = try write("a,b\n1,2\n3,4\n", "unlabeled.csv")
        XCTAssertTrue(errorMessage { try Dataset.loadCSV(path: unlabeled) }.hasPrefix(unlabeled + ":1: no \"label\" column"))
        let data = try Dataset.loadCSV(path: unlabeled, requireTargets: false)
        XCTAssertEqual(data.featureCount, 2)
        XCTAssertEqual(data.targets, [0, 0])
        let labeled = try Dataset.loadCSV(path: write("a,label,b\n1,cat,2\n3,5,4\n", "labeled.csv"), requireTargets: false)
        XCTAssertEqual(labeled.featureNames, ["a", "b"])
        XCTAssertTrue(labeled.targets[0].isNaN)
        XCTAssertEqual(labeled.targets[1], 5)
        guard case let .floats(values) = labeled.features else { return XCTFail("expected float features") }
        XCTAssertEqual(values, [1, 2, 3, 4])
        let onlyLabel = try write("label\n1\n", "only-label.csv")
        XCTAssertEqual(errorMessage { try Dataset.loadCSV(path: onlyLabel, requireTargets: false) },
                       onlyLabel + ":1: the header has no feature columns besides \"label\"")
    }

    func testLimitKeepsLeadingRows() throws {
        let path = try write("label,a,b\n0,1,2\n\n1,3,4\n2,5,6\n", "limit.csv")
        let data = try Dataset.loadCSV(path: path)
        data.limit(to: 10)
        XCTAssertEqual(data.count, 3)
        data.limit(to: 2)
        XCTAssertEqual(data.count, 2)
        XCTAssertEqual(data.targets, [0, 1])
        guard case let .floats(values) = data.features else { return XCTFail("expected float features") }
        XCTAssertEqual(values, [1, 2, 3, 4])
        XCTAssertEqual(data.location(ofRow: 1), path + ":4")
        try data.applyNormalization(.standardize, statisticsFrom: nil)
        XCTAssertEqual(data.offset, [2, 3])

        try writeIDXPair(prefix: "lim", images: Array(0..<12), imageDimensions: [4, 3], labels: [0, 1, 2, 3])
        let idx = try Dataset.loadIDX(prefix: directory + "/lim")
        idx.limit(to: 1)
        XCTAssertEqual(idx.count, 1)
        XCTAssertEqual(gathered(idx, rows: [0]).features, [0, 1, 2])
    }

    // MARK: - IDX datasets

    private func writeIDXPair(prefix: String, images: [UInt8], imageDimensions: [Int], labels: [UInt8], gzip: Bool = false) throws {
        var imageFile = FormatTests.idxBytes(dimensions: imageDimensions, data: images)
        var labelFile = FormatTests.idxBytes(dimensions: [labels.count], data: labels)
        if gzip {
            imageFile = FormatTests.gzip(imageFile)
            labelFile = FormatTests.gzip(labelFile)
        }
        let suffix = gzip ? ".gz" : ""
        _ = try write(imageFile, "\(prefix)-images-idx3-ubyte\(suffix)")
        _ = try write(labelFile, "\(prefix)-labels-idx1-ubyte\(suffix)")
    }

    func testLoadIDXDataset() throws {
        let images = (0..<(4 * 2 * 3)).map { UInt8($0 * 10) }
        try writeIDXPair(prefix: "train", images: images, imageDimensions: [4, 2, 3], labels: [3, 1, 4, 1], gzip: true)
        let data = try Dataset.loadIDX(prefix: directory + "/train")
        XCTAssertEqual(data.count, 4)
        XCTAssertEqual(data.featureCount, 6)
        XCTAssertEqual(data.targets, [3, 1, 4, 1])
        guard case let .bytes(raw) = data.features else { return XCTFail("expected byte features") }
        XCTAssertEqual(Array(raw), images)
        XCTAssertEqual(data.location(ofRow: 2), directory + "/train-labels-idx1-ubyte.gz (item 2)")

        try writeIDXPair(prefix: "odd", images: images, imageDimensions: [4, 2, 3], labels: [1, 2, 3])
        XCTAssertEqual(errorMessage { try Dataset.loadIDX(prefix: self.directory + "/odd") },
                       "\(directory)/odd-images-idx3-ubyte has 4 images but \(directory)/odd-labels-idx1-ubyte has 3 labels")
    }

    func testFashionMNISTCounts() throws {
        let prefix = "/usr/share/datasets/fashion-mnist/"
        guard FileManager.default.fileExists(atPath: prefix + "train-images-idx3-ubyte.gz"),
              FileManager.default.fileExists(atPath: prefix + "t10k-labels-idx1-ubyte.gz") else {
            throw XCTSkip("Fashion-MNIST is not installed under \(prefix)")
        }
        let train = try Dataset.loadIDX(prefix: prefix + "train")
        XCTAssertEqual(train.count, 60000)
        XCTAssertEqual(train.featureCount, 784)
        XCTAssertNoThrow(try train.validateClassLabels(classCount: 10))
        let test = try IDX.read(path: prefix + "t10k-labels-idx1-ubyte.gz")
        XCTAssertEqual(test.dimensions, [10000])
        XCTAssertEqual(Set(test.bytes), Set(0..<10))
    }

    // MARK: - Normalization and gather

    func testNormalizationScaleAndStandardize() throws {
        let train = try Dataset.loadCSV(path: write("label,a,b,c\n0,1,10,5\n1,3,10,5\n0,5,40,5\n", "train.csv"))
        let test = try Dataset.loadCSV(path: write("label,a,b,c\n1,3,25,7\n", "test.csv"))

        try train.applyNormalization(.standardize, statisticsFrom: nil)
        let standardDeviationA = Float((8.0 / 3.0).squareRoot())
        XCTAssertEqual(train.offset, [3, 20, 5])
        XCTAssertEqual(train.scale[0], 1 / standardDeviationA, accuracy: 1e-6)
        XCTAssertEqual(train.scale[1], 1 / Float(200.0.squareRoot()), accuracy: 1e-6)
        XCTAssertEqual(train.scale[2], 1, "constant feature: standard deviation 0 becomes 1")
        XCTAssertEqual(train.normalization, .standardize)

        try test.applyNormalization(.standardize, statisticsFrom: train)
        XCTAssertEqual(test.offset, train.offset)
        XCTAssertEqual(test.scale, train.scale)
        let output = gathered(test, rows: [0])
        XCTAssertEqual(output.features[0], 0, accuracy: 1e-6)
        XCTAssertEqual(output.features[1], 5 / Float(200.0.squareRoot()), accuracy: 1e-6)
        XCTAssertEqual(output.features[2], 2, accuracy: 1e-6)
        XCTAssertEqual(output.labels, [1])

        // Test statistics come from the training set even when the training set was never normalized itself.
        let fresh = try Dataset.loadCSV(path: write("label,a,b,c\n0,1,10,5\n1,3,10,5\n0,5,40,5\n", "fresh.csv"))
        try test.applyNormalization(.standardize, statisticsFrom: fresh)
        XCTAssertEqual(test.offset, train.offset)

        // Saved parameters (model files) restore exactly the same mapping.
        let record = train.normalizationRecord
        XCTAssertEqual(record, NormalizationRecord(mode: .standardize, offset: train.offset, scale: train.scale,
                                                   featureNames: ["a", "b", "c"]))
        let restored = try Dataset.loadCSV(path: write("label,a,b,c\n1,3,25,7\n", "restored.csv"))
        try restored.applyNormalization(record)
        XCTAssertEqual(gathered(restored, rows: [0]).features, output.features)
        let twoWide = try Dataset.loadCSV(path: write("label,a,b\n1,3,25\n", "two.csv"))
        XCTAssertEqual(errorMessage { try twoWide.applyNormalization(record) },
                       "\(directory)/two.csv: rows have 2 features but the saved normalization covers 3")

        try train.applyNormalization(.scale, statisticsFrom: nil)
        XCTAssertEqual(train.normalizationRecord, NormalizationRecord(mode: .scale, offset: [], scale: [], featureNames: ["a", "b", "c"]))
        for (value, expected) in zip(gathered(train, rows: [2]).features, [Float(5) / 255, Float(40) / 255, Float(5) / 255]) {
            XCTAssertEqual(value, expected, accuracy: 1e-7)
        }
        try train.applyNormalization(.none, statisticsFrom: nil)
        XCTAssertEqual(gathered(train, rows: [2]).features, [5, 40, 5])

        let narrow = try Dataset.loadCSV(path: write("label,a,b\n1,3,25\n", "narrow.csv"))
        XCTAssertEqual(errorMessage { try narrow.applyNormalization(.standardize, statisticsFrom: train) },
                       "\(directory)/narrow.csv: rows have 2 features but the training data \(directory)/train.csv has 3")
        XCTAssertEqual(Normalization(rawValue: "standardize"), .standardize)
        XCTAssertNil(Normalization(rawValue: "minmax"))
    }

    private func gathered(_ data: Dataset, rows: [Int32], threads: Int = 1) -> (features: [Float], labels: [Float]) {
        var features = [Float](repeating: .nan, count: rows.count * data.featureCount)
        var labels = [Float](repeating: .nan, count: rows.count)
        rows.withUnsafeBufferPointer { rowBuffer in
            features.withUnsafeMutableBufferPointer { featureBuffer in
                labels.withUnsafeMutableBufferPointer { labelBuffer in
                    data.gather(rows: rowBuffer, features: featureBuffer.baseAddress!, targets: labelBuffer.baseAddress!, threads: threads)
                }
            }
        }
        return (features, labels)
    }

    /// The straightforward scalar definition gather must reproduce exactly.
    private func naiveGather(_ data: Dataset, rows: [Int32]) throws -> (features: [Float], labels: [Float]) {
        var features: [Float] = []
        let values = try data.rawFeatureValues()
        for row in rows.map(Int.init) {
            for feature in 0..<data.featureCount {
                let raw = values[row * data.featureCount + feature]
                features.append((raw - data.offset[feature]) * data.scale[feature])
            }
        }
        return (features, rows.map { data.targets[Int($0)] })
    }

    func testGatherMatchesScalarReference() throws {
        // Widths around the 16-lane and 8-lane boundaries exercise the vector body and the scalar tail.
        for width in [1, 7, 8, 15, 16, 17, 33, 784] {
            let count = 37
            var state: UInt32 = 12345
            let pixels = (0..<(count * width)).map { _ -> UInt8 in
                state = state &* 1_664_525 &+ 1_013_904_223
                return UInt8(truncatingIfNeeded: state >> 24)
            }
            let labels = (0..<count).map { UInt8($0 % 10) }
            try writeIDXPair(prefix: "w\(width)", images: pixels, imageDimensions: [count, width], labels: labels)
            let bytes = try Dataset.loadIDX(prefix: directory + "/w\(width)")
            let floats = try Dataset(features: pixels.map { Float($0) * 0.37 - 11 }, targets: labels.map(Float.init), featureCount: width)
            let rows: [Int32] = [36, 0, 5, 5, 17, 1, 30, 2, 9, 36, 12, 3, 4, 8, 20, 21, 22]
            for data in [bytes, floats] {
                for mode in Normalization.allCases {
                    try data.applyNormalization(mode, statisticsFrom: nil)
                    let expected = try naiveGather(data, rows: rows)
                    let single = gathered(data, rows: rows)
                    XCTAssertEqual(single.features, expected.features, "width \(width) \(mode)")
                    XCTAssertEqual(single.labels, expected.labels)
                    let threaded = gathered(data, rows: rows, threads: 3)
                    XCTAssertEqual(threaded.features, expected.features, "threaded width \(width) \(mode)")
                }
            }
        }
        // Large enough to actually split across threads.
        let big = try Dataset(features: (0..<(4096 * 20)).map { Float($0 % 97) }, targets: (0..<4096).map { Float($0 % 3) }, featureCount: 20)
        try big.applyNormalization(.standardize, statisticsFrom: nil)
        let rows = (0..<4096).map { Int32((Int($0) * 7919) % 4096) }
        XCTAssertEqual(gathered(big, rows: rows, threads: 4).features, try naiveGather(big, rows: rows).features)
    }

    // MARK: - Labels

    func testValidateClassLabels() throws {
        let path = try write("label,x\n0,1\n9,1\n\n12,1\n", "labels.csv")
        let data = try Dataset.loadCSV(path: path)
        XCTAssertNoThrow(try data.validateClassLabels(classCount: 13))
        XCTAssertEqual(errorMessage { try data.validateClassLabels(classCount: 10) },
                       "\(path):5: label 12 outside 0..<10 (the output layer has 10 units)")
        let fractional = try Dataset.loadCSV(path: write("label,x\n0,1\n2.5,1\n", "fractional.csv"))
        XCTAssertEqual(errorMessage { try fractional.validateClassLabels(classCount: 10) },
                       "\(directory)/fractional.csv:3: label 2.5 outside 0..<10 (the output layer has 10 units)")
        let negative = try Dataset.loadCSV(path: write("label,x\n-1,1\n", "negative.csv"))
        XCTAssertEqual(errorMessage { try negative.validateClassLabels(classCount: 10) },
                       "\(directory)/negative.csv:2: label -1 outside 0..<10 (the output layer has 10 units)")

        try writeIDXPair(prefix: "idx", images: [UInt8](repeating: 0, count: 6), imageDimensions: [3, 2], labels: [1, 0, 10])
        let idx = try Dataset.loadIDX(prefix: directory + "/idx")
        XCTAssertEqual(errorMessage { try idx.validateClassLabels(classCount: 10) },
                       "\(directory)/idx-labels-idx1-ubyte (item 2): label 10 outside 0..<10 (the output layer has 10 units)")
    }
}
