@testable import Datasets
@testable import Formats
import Foundation
@testable import Support
@testable import Training
import XCTest

/// The .npz reader on files numpy wrote (Tests/fixtures/npz, made by make_fixtures.py there): every dtype, stored and
/// deflated, zip64, and each kind of broken file ending in one clear UserError.
final class NPZTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fixtures").appendingPathComponent("npz").path

    func fixture(_ name: String) -> String { Self.fixtures + "/" + name }

    /// x[r, c] = 3r + c (+ 0.5 for floats, % 2 for bool), as make_fixtures.py writes it.
    func expectedFeatures(_ dtype: String) -> [Float] {
        (0..<15).map { value in
            switch dtype {
            case "float32", "float64": return Float(value) + 0.5
            case "bool": return Float(value % 2)
            default: return Float(value)
            }
        }
    }

    /// y[r] = (r / 2, −r) for two columns, r / 2 for one.
    func expectedTargets(columns: Int) -> [Float] {
        var values: [Float] = []
        for row in 0..<5 {
            values.append(Float(row) / 2)
            if columns == 2 { values.append(-Float(row)) }
        }
        return values
    }

    func rawFeatures(_ data: Dataset) throws -> [Float] { try data.rawFeatureValues() }

    func testEveryDtypeStoredAndDeflated() throws {
        for dtype in ["uint8", "bool", "int32", "int64", "float32", "float64"] {
            for kind in ["stored", "deflated"] {
                let name = "x-\(dtype)-\(kind).npz"
                let data = try Dataset.loadNPZ(path: fixture(name))
                XCTAssertEqual(data.count, 5, name)
                XCTAssertEqual(data.featureCount, 3, name)
                XCTAssertEqual(data.targetCount, 2, name)
                XCTAssertEqual(data.targetNames, ["y_0", "y_1"], name)
                XCTAssertEqual(try rawFeatures(data), expectedFeatures(dtype), name)
                XCTAssertEqual(data.targets, expectedTargets(columns: 2), name)
                XCTAssertEqual(data.location(ofRow: 3), fixture(name) + " (row 3)")
                // An uncompressed byte array stays in the mapped file; everything else is converted once.
                if case let .bytes(storage) = data.features {
                    XCTAssertTrue(["uint8", "bool"].contains(dtype), name)
                    XCTAssertEqual(storage.isFileBacked, kind == "stored", name)
                } else {
                    XCTAssertFalse(["uint8", "bool"].contains(dtype), name)
                    // A stored array of another type is read from the file by rows; a deflated one is in memory.
                    if case .file = data.features { XCTAssertEqual(kind, "stored", name) } else { XCTAssertEqual(kind, "deflated", name) }
                }
            }
        }
    }

    func testNamesShapesAndZip64() throws {
        let capital = try Dataset.loadNPZ(path: fixture("capital-x-y1d.npz"))
        XCTAssertEqual(capital.targetNames, ["y"])
        XCTAssertEqual(capital.targets, [0, 0, 1, 1, 2], "int64 y: r / 2 truncated")
        XCTAssertEqual(try rawFeatures(capital), expectedFeatures("float32"))
        let named = try Dataset.loadNPZ(path: fixture("x-uint8-stored.npz"), targetNames: ["speed", "angle"])
        XCTAssertEqual(named.targetNames, ["speed", "angle"])
        let cube = try Dataset.loadNPZ(path: fixture("x3d.npz"))
        XCTAssertEqual(cube.featureCount, 3, "[5, 1, 3] flattens to 3 features per row")
        let zip64 = try Dataset.loadNPZ(path: fixture("zip64.npz"))
        XCTAssertEqual(try rawFeatures(zip64), expectedFeatures("float32"))
        XCTAssertEqual(zip64.targets, expectedTargets(columns: 2))
        let extra = try Dataset.loadNPZ(path: fixture("extra-arrays.npz"))
        XCTAssertEqual(extra.count, 5, "arrays other than x and y are ignored")
        // Prediction inputs need no y.
        let featuresOnly = try Dataset.loadNPZ(path: fixture("features-only.npz"), requireTargets: false)
        XCTAssertEqual(featuresOnly.count, 5)
        XCTAssertEqual(try rawFeatures(featuresOnly), expectedFeatures("float64"))
    }

    func testGatherAndLimitOnMappedBytes() throws {
        let data = try Dataset.loadNPZ(path: fixture("x-uint8-stored.npz"))
        try data.applyNormalization(.scale)
        try data.applyTargetNormalization(.standardize)
        var features = [Float](repeating: 0, count: 6), targets = [Float](repeating: 0, count: 4)
        let rows: [Int32] = [4, 1]
        rows.withUnsafeBufferPointer { rows in
            features.withUnsafeMutableBufferPointer { features in
                targets.withUnsafeMutableBufferPointer { data.gather(rows: rows, features: features.baseAddress!, targets: $0.baseAddress!) }
            }
        }
        XCTAssertEqual(features, [12, 13, 14, 3, 4, 5].map { Float($0) * (1 / 255) })
        // Targets (r/2, −r) standardized: mean (1, −2), population deviation (√0.5, √2).
        let first = Float(0.5).squareRoot(), second = Float(2).squareRoot()
        let expected: [Float] = [(2 - 1) / first, (-4 + 2) / second, (0.5 - 1) / first, (-1 + 2) / second]
        for (got, value) in zip(targets, expected) { XCTAssertEqual(got, value, accuracy: 1e-5) }
        data.limit(to: 2)
        XCTAssertEqual(data.count, 2)
        XCTAssertEqual(try rawFeatures(data), [0, 1, 2, 3, 4, 5])
        XCTAssertEqual(data.targets, [0, 0, 0.5, -1])
    }

    func testBrokenFilesEndInOneLineErrors() throws {
        let cases: [(String, String)] = [
            ("bad-no-y.npz", "no targets array y (arrays: \"x\")"),
            ("bad-no-x.npz", "no features array x or X (arrays: \"y\")"),
            ("bad-x-and-X.npz", "both x and X arrays; keep one"),
            ("bad-rows-disagree.npz", "x has 5 rows but y has 4 (shapes (5, 3) and (4, 2))"),
            ("bad-x-1d.npz", "x.npy: shape (5,), expected [rows, features]"),
            ("bad-y-3d.npz", "y.npy: shape (5, 2, 2), expected [rows] or [rows, targets]"),
            ("bad-fortran.npz", "x.npy: Fortran-order arrays are not supported"),
            ("bad-big-endian.npz", "x.npy: big-endian dtype \">f4\" is not supported"),
            ("bad-float16.npz", "x.npy: unsupported dtype \"<f2\" (supported: uint8, bool, int32, int64, float32, float64)"),
            ("bad-structured.npz", "x.npy: structured dtypes are not supported"),
            ("bad-object.npz", "x.npy: unsupported dtype \"|O\""),
            ("bad-nan.npz", "x.npy: value at row 3, column 2 is not finite as a float32"),
            ("bad-empty-x.npz", "x.npy: no rows (shape (0, 3))"),
            ("bad-not-zip.npz", "not a zip file (no zip signature"),
            ("bad-truncated.npz", "corrupt zip: no end-of-central-directory record (is the file truncated?)"),
            ("bad-crc.npz", "member \"x.npy\" is corrupt: CRC-32 mismatch"),
            ("bad-npy-magic.npz", "x.npy: not a .npy array (bad magic string)"),
            ("bad-deflate.npz", "member \"x.npy\" is corrupt:"),
        ]
        for (name, fragment) in cases {
            do {
                // Values of a stored member are checked by the pass a run makes over the rows left in their files.
                try Dataset.loadNPZ(path: fixture(name)).verifyFileRows(part: 0, of: 1)
                XCTFail("\(name): no error")
            } catch let error as UserError {
                XCTAssertTrue(error.message.hasPrefix(fixture(name) + ": "), "\(name): \(error.message)")
                XCTAssertTrue(error.message.contains(fragment), "\(name): \(error.message)")
                XCTAssertFalse(error.message.contains("\n"), name)
            }
        }
        XCTAssertThrowsError(try Dataset.loadNPZ(path: fixture("x-uint8-stored.npz"), targetNames: ["a", "b", "c"])) { error in
            XCTAssertTrue(String(describing: error).contains("y.npy: 2 target columns, expected 3 (\"a\", \"b\", \"c\")"), "\(error)")
        }
        XCTAssertThrowsError(try Dataset.loadNPZ(path: fixture("absent.npz"))) { error in
            XCTAssertEqual((error as? UserError)?.message, fixture("absent.npz") + ": no such file")
        }
    }

    /// Every single-byte corruption and every truncation of a small stored and a small deflated archive ends in
    /// success or one UserError (the fuzz target does this at random; here exhaustively, for the replay suite).
    func testEveryTruncationAndByteFlip() throws {
        for name in ["x-float32-stored.npz", "x-int64-deflated.npz", "zip64.npz"] {
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: fixture(name))))
            var variants: [[UInt8]] = (0..<bytes.count).map { Array(bytes[0..<$0]) }
            for index in bytes.indices {
                var flipped = bytes
                flipped[index] ^= 0xFF
                variants.append(flipped)
            }
            for variant in variants {
                do {
                    let data = try Dataset.fromNPZ(FileBytes(copying: variant), path: "fuzz.npz")
                    XCTAssertEqual(data.targets.count, data.count * data.targetCount)
                } catch let error as UserError {
                    XCTAssertFalse(error.message.contains("\n"))
                }
            }
        }
    }
}
