import CZlib
@testable import Formats
import Foundation
@testable import Support
@testable import Training
import XCTest

final class FormatTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "plexus-format-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        _ = try? FileManager.default.removeItem(atPath: directory)
    }

    // MARK: - SHA-256

    func testSHA256NISTVectors() {
        XCTAssertEqual(SHA256.hexDigest(of: Array("".utf8)),
                       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hexDigest(of: Array("abc".utf8)),
                       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hexDigest(of: Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // One million 'a', fed in uneven chunks to exercise block buffering.
        var hasher = SHA256()
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 999)
        var remaining = 1_000_000
        while remaining > 0 {
            let take = min(remaining, chunk.count)
            hasher.update(bytes: chunk[0..<take])
            remaining -= take
        }
        XCTAssertEqual(SHA256.hex(hasher.finalize()),
                       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    func testSHA256ByteAtATimeMatchesOneShot() {
        let message = Array((0..<300).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        for length in [0, 1, 55, 56, 63, 64, 65, 119, 128, 300] {
            var hasher = SHA256()
            for byte in message[0..<length] { hasher.update(bytes: [byte]) }
            XCTAssertEqual(SHA256.hex(hasher.finalize()), SHA256.hexDigest(of: message[0..<length]), "length \(length)")
        }
    }

    // MARK: - SafeTensors

    private let sample = [
        TensorRecord(name: "layer0.weight", shape: [2, 3], values: [1, -2, 3.5, 0, .leastNonzeroMagnitude, -.greatestFiniteMagnitude]),
        TensorRecord(name: "layer0.bias", shape: [3], values: [0.25, 0.5, 0.75]),
        TensorRecord(name: "scalar", shape: [], values: [42]),
        TensorRecord(name: "empty", shape: [0, 4], values: []),
    ]

    func testSafeTensorsRoundTrip() throws {
        let metadata = ["format": "plexus", "epoch": "3", "quote\"key": "line\nbreak"]
        let bytes = SafeTensors.encode(sample, metadata: metadata)
        let headerLength = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        XCTAssertEqual(headerLength % 8, 0)
        let decoded = try SafeTensors.decode(bytes, path: "x.safetensors")
        XCTAssertEqual(decoded.metadata, metadata)
        // Given order is data-offset order; the empty tensor shares its offset with the end.
        XCTAssertEqual(decoded.tensors, sample)

        let path = directory + "/model.safetensors"
        try SafeTensors.write(sample, metadata: metadata, to: path)
        let read = try SafeTensors.read(path: path)
        XCTAssertEqual(read.tensors, sample)
        XCTAssertEqual(read.metadata, metadata)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory)
        XCTAssertEqual(leftovers, ["model.safetensors"], "no temporary files left behind")
    }

    func testSafeTensorsReferenceLayout() throws {
        // What `safetensors.numpy.save_file({"a": [[1,2],[3,4]], "b": [5]}, metadata={"format": "np"})` writes.
        let header = #"{"__metadata__":{"format":"np"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[1],"data_offsets":[16,20]}}"#
        var headerBytes = Array(header.utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(UInt8(ascii: " ")) }
        var file: [UInt8] = []
        SafeTensors.appendLittleEndian(UInt64(headerBytes.count), to: &file)
        file += headerBytes
        for value: Float in [1, 2, 3, 4, 5] {
            withUnsafeBytes(of: value.bitPattern.littleEndian) { file += $0 }
        }
        let expected = [
            TensorRecord(name: "a", shape: [2, 2], values: [1, 2, 3, 4]),
            TensorRecord(name: "b", shape: [1], values: [5]),
        ]
        XCTAssertEqual(SafeTensors.encode(expected, metadata: ["format": "np"]), file)
        let decoded = try SafeTensors.decode(file, path: "ref.safetensors")
        XCTAssertEqual(decoded.tensors, expected)
        XCTAssertEqual(decoded.metadata, ["format": "np"])

        // Header key order and whitespace do not matter; tensors come back in data-offset order.
        let shuffled = #"{ "b" : {"data_offsets":[0,4],"shape":[1],"dtype":"F32"}, "a": {"shape":[2,2],"dtype":"F32","data_offsets":[4,20]} }"#
        var shuffledBytes: [UInt8] = []
        SafeTensors.appendLittleEndian(UInt64(shuffled.utf8.count), to: &shuffledBytes)
        shuffledBytes += Array(shuffled.utf8)
        for value: Float in [5, 1, 2, 3, 4] {
            withUnsafeBytes(of: value.bitPattern.littleEndian) { shuffledBytes += $0 }
        }
        let reordered = try SafeTensors.decode(shuffledBytes, path: "ref2.safetensors")
        XCTAssertEqual(reordered.tensors.map(\.name), ["b", "a"])
        XCTAssertEqual(reordered.tensors[1].values, [1, 2, 3, 4])
        XCTAssertEqual(reordered.metadata, [:])
    }

    private func file(header: String, dataBytes: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        SafeTensors.appendLittleEndian(UInt64(header.utf8.count), to: &bytes)
        bytes += Array(header.utf8)
        bytes += [UInt8](repeating: 0, count: dataBytes)
        return bytes
    }

    func testSafeTensorsCorruptionIsReported() throws {
        let valid = #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        XCTAssertNoThrow(try SafeTensors.decode(file(header: valid, dataBytes: 8), path: "ok.safetensors"))

        var cases: [(String, [UInt8], String)] = [
            ("short file", [1, 2, 3], "shorter"),
            ("header past end", [255, 0, 0, 0, 0, 0, 0, 0, UInt8(ascii: "{")], "runs past"),
            ("huge header length", [255, 255, 255, 255, 255, 255, 255, 255], "runs past"),
            ("bad JSON", file(header: #"{"w": {"dtype": "F32",,}"#, dataBytes: 0), "not valid JSON"),
            ("not an object", file(header: "[1, 2, 3]", dataBytes: 0), "not a JSON object"),
            ("missing dtype", file(header: #"{"w":{"shape":[2],"data_offsets":[0,8]}}"#, dataBytes: 8), "no \"dtype\""),
            ("missing shape", file(header: #"{"w":{"dtype":"F32","data_offsets":[0,8]}}"#, dataBytes: 8), "no \"shape\""),
            ("missing offsets", file(header: #"{"w":{"dtype":"F32","shape":[2]}}"#, dataBytes: 8), "data_offsets"),
            ("entry not object", file(header: #"{"w":5}"#, dataBytes: 0), "not an object"),
            ("F16", file(header: #"{"w":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}"#, dataBytes: 4), "only F32 is supported"),
            ("fractional shape", file(header: #"{"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}"#, dataBytes: 8), "shape"),
            ("negative shape", file(header: #"{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, dataBytes: 8), "shape"),
            ("boolean shape", file(header: #"{"w":{"dtype":"F32","shape":[true],"data_offsets":[0,4]}}"#, dataBytes: 4), "shape"),
            ("string shape", file(header: #"{"w":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}}"#, dataBytes: 8), "shape"),
            ("size mismatch", file(header: #"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, dataBytes: 8), "needs 12"),
            ("offsets past end", file(header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, dataBytes: 4), "run past"),
            ("reversed offsets", file(header: #"{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}"#, dataBytes: 8), "invalid data_offsets"),
            ("overlap", file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, dataBytes: 12), "overlap"),
            ("gap", file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, dataBytes: 8), "gap"),
            ("trailing data", file(header: valid, dataBytes: 12), "cover 8"),
            ("metadata not strings", file(header: #"{"__metadata__":{"k":1}}"#, dataBytes: 0), "__metadata__"),
            ("huge shape", file(header: #"{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#, dataBytes: 8), "shape"),
        ]
        cases.append(("empty header", [0, 0, 0, 0, 0, 0, 0, 0], "not a JSON object"))
        for (label, bytes, fragment) in cases {
            XCTAssertThrowsError(try SafeTensors.decode(bytes, path: "bad.safetensors"), label) { error in
                let message = (error as? UserError)?.message ?? "not a UserError: \(error)"
                XCTAssertTrue(message.hasPrefix("bad.safetensors: corrupt safetensors: "), "\(label): \(message)")
                XCTAssertTrue(message.contains(fragment), "\(label): \(message)")
                XCTAssertFalse(message.contains("\n"), label)
            }
        }
    }

    func testSafeTensorsAtomicWriteFailureKeepsOldFile() throws {
        let path = directory + "/keep.safetensors"
        try SafeTensors.write(sample, metadata: ["v": "1"], to: path)
        let before = try FileIO.readBytes(path: path)

        XCTAssertThrowsError(try SafeTensors.write(sample, metadata: [:], to: directory + "/missing/dir/x.safetensors")) { error in
            XCTAssertTrue((error as? UserError)?.message.contains("/missing/dir/x.safetensors") ?? false, "\(error)")
        }
        // A read-only directory (root ignores permissions, so only check when they are enforced).
        try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: directory)
        defer { try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory) }
        if access(directory, W_OK) != 0 {
            XCTAssertThrowsError(try SafeTensors.write([], metadata: [:], to: path)) { error in
                XCTAssertTrue((error as? UserError)?.message.hasPrefix(path + ": cannot write") ?? false, "\(error)")
            }
        }
        // Writing over a directory fails at rename and must leave no temporary file behind.
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory)
        try FileManager.default.createDirectory(atPath: directory + "/occupied", withIntermediateDirectories: false)
        try FileManager.default.createDirectory(atPath: directory + "/occupied/child", withIntermediateDirectories: false)
        XCTAssertThrowsError(try SafeTensors.write(sample, metadata: [:], to: directory + "/occupied")) { error in
            XCTAssertTrue((error as? UserError)?.message.hasPrefix(self.directory + "/occupied: cannot write") ?? false, "\(error)")
        }
        XCTAssertEqual(try FileIO.readBytes(path: path), before)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory).sorted(), ["keep.safetensors", "occupied"])

        let mismatched = [TensorRecord(name: "w", shape: [3], values: [1, 2])]
        XCTAssertThrowsError(try SafeTensors.write(mismatched, metadata: [:], to: path))
        XCTAssertEqual(try FileIO.readBytes(path: path), before)
    }

    func testSafeTensorsValueDigest() {
        // Same values, different split into tensors: same digest (it covers values only, in order).
        let one = [TensorRecord(name: "a", shape: [3], values: [1, 2, 3])]
        let two = [TensorRecord(name: "x", shape: [1], values: [1]), TensorRecord(name: "y", shape: [2], values: [2, 3])]
        XCTAssertEqual(SafeTensors.sha256OfValues(one), SafeTensors.sha256OfValues(two))
        var bytes: [UInt8] = []
        for value: Float in [1, 2, 3] { withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes += $0 } }
        XCTAssertEqual(SafeTensors.sha256OfValues(one), SHA256.hexDigest(of: bytes))
        XCTAssertEqual(SafeTensors.sha256OfValues([]), SHA256.hexDigest(of: [UInt8]()))
    }

    // MARK: - IDX

    static func idxBytes(dimensions: [Int], data: [UInt8], type: UInt8 = 0x08) -> [UInt8] {
        var bytes: [UInt8] = [0, 0, type, UInt8(dimensions.count)]
        for size in dimensions {
            bytes += [UInt8(size >> 24 & 0xff), UInt8(size >> 16 & 0xff), UInt8(size >> 8 & 0xff), UInt8(size & 0xff)]
        }
        return bytes + data
    }

    /// Gzip-compresses bytes with zlib (windowBits 16+15 selects the gzip wrapper).
    static func gzip(_ input: [UInt8]) -> [UInt8] {
        var stream = z_stream()
        guard deflateInit2_(&stream, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY,
                            ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else { return [] }
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, UInt(input.count))) + 64)
        var mutableInput = input
        let produced: Int = mutableInput.withUnsafeMutableBufferPointer { inputBuffer in
            output.withUnsafeMutableBufferPointer { outputBuffer in
                stream.next_in = inputBuffer.baseAddress
                stream.avail_in = UInt32(inputBuffer.count)
                stream.next_out = outputBuffer.baseAddress
                stream.avail_out = UInt32(outputBuffer.count)
                guard deflate(&stream, Z_FINISH) == Z_STREAM_END else { return 0 }
                return outputBuffer.count - Int(stream.avail_out)
            }
        }
        return Array(output[0..<produced])
    }

    private func write(_ bytes: [UInt8], _ name: String) throws -> String {
        let path = directory + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    func testIDXPlainAndGzipped() throws {
        let data = (0..<(5 * 3 * 4)).map { UInt8(truncatingIfNeeded: $0 * 37) }
        let plain = Self.idxBytes(dimensions: [5, 3, 4], data: data)
        let plainPath = try write(plain, "images")
        XCTAssertEqual(try IDX.read(path: plainPath), IDXArray(dimensions: [5, 3, 4], bytes: data))

        let gzipped = Self.gzip(plain)
        XCTAssertEqual(gzipped.prefix(2), [0x1f, 0x8b])
        let gzipPath = try write(gzipped, "images.gz")
        XCTAssertEqual(try IDX.read(path: gzipPath), IDXArray(dimensions: [5, 3, 4], bytes: data))

        // ISIZE only seeds the buffer size: with a lying trailer the buffer still grows to the real size,
        // and then zlib's own length check rejects the stream.
        let big = Self.idxBytes(dimensions: [1000, 100], data: (0..<100_000).map { UInt8(truncatingIfNeeded: $0 % 251) })
        var lying = Self.gzip(big)
        lying.replaceSubrange((lying.count - 4)..<lying.count, with: [16, 0, 0, 0])
        XCTAssertThrowsError(try IDX.read(path: write(lying, "lying.gz")))
        XCTAssertEqual(try IDX.read(path: write(Self.gzip(big), "big.gz")).bytes.count, 100_000)

        // Concatenated gzip members are one stream; trailing bytes after the data are ignored.
        let halves = Self.gzip(Array(plain[0..<10])) + Self.gzip(Array(plain[10...]) + [9, 9, 9])
        XCTAssertEqual(try IDX.read(path: write(halves, "members.gz")), IDXArray(dimensions: [5, 3, 4], bytes: data))
    }

    func testIDXErrors() throws {
        func message(_ body: () throws -> Any) -> String {
            do { _ = try body(); return "no error" } catch { return (error as? UserError)?.message ?? "not a UserError: \(error)" }
        }
        let missing = directory + "/nothing"
        XCTAssertEqual(message { try IDX.read(path: missing) }, "\(missing): no such file")

        let magic = try write([1, 2, 8, 1, 0, 0, 0, 1, 7], "magic")
        XCTAssertTrue(message { try IDX.read(path: magic) }.hasPrefix("\(magic): not an IDX file"))

        let floats = try write(Self.idxBytes(dimensions: [1], data: [0, 0, 0, 0], type: 0x0D), "floats")
        let floatMessage = message { try IDX.read(path: floats) }
        XCTAssertTrue(floatMessage.hasPrefix("\(floats): unsupported IDX element type 0xd"), floatMessage)
        XCTAssertTrue(floatMessage.contains("only unsigned byte"), floatMessage)

        let truncated = try write(Self.idxBytes(dimensions: [10, 28, 28], data: [UInt8](repeating: 1, count: 100)), "truncated")
        XCTAssertEqual(message { try IDX.read(path: truncated) },
                       "\(truncated): truncated IDX data: dimensions 10×28×28 need 7840 bytes, file has 100")
        let shortHeader = try write([0, 0, 8, 3, 0, 0], "short-header")
        XCTAssertTrue(message { try IDX.read(path: shortHeader) }.hasPrefix("\(shortHeader): truncated IDX header"))

        let full = Self.gzip(Self.idxBytes(dimensions: [100, 10], data: [UInt8](repeating: 3, count: 1000)))
        let cut = try write(Array(full[0..<(full.count / 2)]), "cut.gz")
        XCTAssertTrue(message { try IDX.read(path: cut) }.hasPrefix("\(cut): corrupt gzip data"))
        var garbled = full
        for index in 10..<min(30, garbled.count) { garbled[index] ^= 0x5a }
        let garbledPath = try write(garbled, "garbled.gz")
        XCTAssertTrue(message { try IDX.read(path: garbledPath) }.hasPrefix("\(garbledPath): corrupt gzip data"))
        let headerOnly = try write([0x1f, 0x8b], "header-only.gz")
        XCTAssertTrue(message { try IDX.read(path: headerOnly) }.hasPrefix("\(headerOnly): corrupt gzip data"))
    }

    func testIDXPrefixResolution() throws {
        let prefix = directory + "/train"
        XCTAssertThrowsError(try IDX.resolvePrefix(prefix)) { error in
            let message = (error as? UserError)?.message ?? ""
            XCTAssertTrue(message.contains("train-images-idx3-ubyte[.gz]") && message.contains("train-labels-idx1-ubyte[.gz]"), message)
        }
        _ = try write([1], "train-images-idx3-ubyte.gz")
        XCTAssertThrowsError(try IDX.resolvePrefix(prefix)) { error in
            XCTAssertEqual((error as? UserError)?.message,
                           "\(prefix)-labels-idx1-ubyte[.gz]: no such file (labels for data prefix \"\(prefix)\")")
        }
        _ = try write([1], "train-labels-idx1-ubyte")
        var resolved = try IDX.resolvePrefix(prefix)
        XCTAssertEqual(resolved.images, prefix + "-images-idx3-ubyte.gz")
        XCTAssertEqual(resolved.labels, prefix + "-labels-idx1-ubyte")
        _ = try write([1], "train-images-idx3-ubyte")
        _ = try write([1], "train-labels-idx1-ubyte.gz")
        resolved = try IDX.resolvePrefix(prefix)
        XCTAssertEqual(resolved.images, prefix + "-images-idx3-ubyte", "uncompressed preferred")
        XCTAssertEqual(resolved.labels, prefix + "-labels-idx1-ubyte")
    }
}
