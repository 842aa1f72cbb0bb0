@testable import Formats
import Foundation
@testable import Observe
@testable import Support
@testable import Training
import XCTest

/// TFRecord framing, the hand-encoded protobuf messages (checked byte for byte against protobuf's own encoder) and
/// how a resumed run's event files avoid writing any (tag, step) twice.
final class EventFileTests: TemporaryDirectoryTestCase {

    private func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    func testCRC32CKnownValues() {
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)  // RFC 3720 B.4
        XCTAssertEqual(CRC32C.masked([UInt8]()), 0xA282_EAD8)
    }

    // The expected bytes are what protobuf's Python encoder writes for the same messages (tensorboard.compat.proto).
    func testEventsEncodeAsProtobufDoes() {
        XCTAssertEqual(hex(EventFileWriter.event(wallTime: 1.5, step: 3, values: [.scalar(tag: "test/loss", value: 0.25)])),
                       "09000000000000f83f10032a120a100a09746573742f6c6f7373150000803e")
        XCTAssertEqual(hex(EventFileWriter.event(wallTime: 1.5, step: 7, values: [.text(tag: "config", "hi")])),
                       "09000000000000f83f10072a1e0a1c0a06636f6e666967420808071200420268694a080a060a0474657874")
        var histogram = Histogram([Float]())
        (histogram.minimum, histogram.maximum, histogram.count, histogram.sum, histogram.sumOfSquares) = (0.5, 2, 3, 3, 5)
        (histogram.bucketLimits, histogram.bucketCounts) = ([1, 2], [1, 2])
        XCTAssertEqual(hex(EventFileWriter.event(wallTime: 1.5, step: 2, values: [.histogram(tag: "w", histogram),
                                                                                    .scalar(tag: "s", value: -1)])),
                       "09000000000000f83f10022a620a560a01772a5109000000000000e03f1100000000000000401900000000000008402100000000"
                           + "000008402900000000000014403210000000000000f03f00000000000000403a10000000000000f03f000000000000004"
                           + "00a080a017315000080bf")
        XCTAssertEqual(hex(EventFileWriter.event(wallTime: 1.5, fileVersion: "brain.Event:2")),
                       "09000000000000f83f1a0d627261696e2e4576656e743a32")
    }

    func testRecordsRoundTripAndStopAtATornTail() {
        var bytes: [UInt8] = []
        let payloads: [[UInt8]] = [[1, 2, 3], [], Array(repeating: 7, count: 300)]
        for payload in payloads { TFRecord.append(payload, to: &bytes) }
        XCTAssertEqual(bytes.count, payloads.map { $0.count + 16 }.reduce(0, +))
        let (records, intact) = TFRecord.records(in: bytes)
        XCTAssertTrue(intact)
        XCTAssertEqual(records.map(Array.init), payloads)
        // A write cut short: the last record is dropped, the others kept.
        let cut = TFRecord.records(in: Array(bytes.dropLast(3)))
        XCTAssertFalse(cut.intact)
        XCTAssertEqual(cut.records.map(Array.init), Array(payloads.prefix(2)))
        // A flipped data byte fails its checksum.
        var flipped = bytes
        flipped[12 + 1] ^= 0x10
        XCTAssertEqual(TFRecord.records(in: flipped).records.count, 0)
        XCTAssertFalse(TFRecord.records(in: flipped).intact)
    }

    func testEventSummaryReadsStepAndTags() throws {
        let bytes = EventFileWriter.event(wallTime: 2, step: 40, values: [.scalar(tag: "train/loss", value: 1),
                                                                          .text(tag: "config", "x")])
        let event = try XCTUnwrap(EventSummary(bytes[...]))
        XCTAssertEqual(event.step, 40)
        XCTAssertEqual(event.tags, ["train/loss", "config"])
        XCTAssertEqual(EventSummary(EventFileWriter.event(wallTime: 2, fileVersion: "brain.Event:2")[...])?.tags, [])
        XCTAssertNil(EventSummary([0x0A, 0x05, 0x01][...]), "a length past the end is not an event")
    }

    func testHistogramBuckets() {
        let histogram = Histogram((0..<10).map(Float.init) + [.nan, .infinity], buckets: 5)
        XCTAssertEqual(histogram.count, 10)
        XCTAssertEqual(histogram.minimum, 0)
        XCTAssertEqual(histogram.maximum, 9)
        XCTAssertEqual(histogram.sum, 45)
        XCTAssertEqual(histogram.sumOfSquares, 285)
        XCTAssertEqual(histogram.bucketCounts, [2, 2, 2, 2, 2])
        XCTAssertEqual(histogram.bucketLimits.last, 9)
        let constant = Histogram([Float](repeating: 0.5, count: 4))
        XCTAssertEqual(constant.bucketLimits, [0.5])
        XCTAssertEqual(constant.bucketCounts, [4])
    }

    /// (tag, step) of every summary value of every event file in `directory`, read from the raw records.
    private func taggedSteps() throws -> [String: [Int]] {
        var steps: [String: [Int]] = [:]
        for path in EventFileWriter.files(in: directory) {
            let (records, intact) = TFRecord.records(in: try FileIO.readBytes(path: path))
            XCTAssertTrue(intact, path)
            for record in records {
                let event = try XCTUnwrap(EventSummary(record))
                for tag in event.tags { steps[tag, default: []].append(event.step) }
            }
        }
        return steps
    }

    func testResumeCutsEarlierFilesSoNoTagAndStepRepeats() throws {
        let first = try EventFileWriter(directory: directory)
        try first.write(step: 0, [.text(tag: "config", "first")])
        for step in stride(from: 5, through: 20, by: 5) { try first.write(step: step, [.scalar(tag: "train/loss", value: Float(step))]) }
        try first.write(step: 20, [.scalar(tag: "test/loss", value: 1)])
        // The process crashed while writing the next record: a torn tail.
        let torn = try FileHandle(forWritingTo: URL(fileURLWithPath: first.path))
        torn.seekToEndOfFile()
        torn.write(Data([0x10, 0, 0, 0, 0, 0, 0, 0, 0xFF]))
        torn.closeFile()

        // Resume from the checkpoint at step 10: the earlier file keeps steps ≤ 10, the new one continues.
        try EventFileWriter.truncate(filesIn: directory, resumingAt: 10, restartTags: ["config"])
        let second = try EventFileWriter(directory: directory)
        XCTAssertEqual(EventFileWriter.files(in: directory), [first.path, second.path], "the new file sorts last")
        try second.write(step: 10, [.text(tag: "config", "second")])
        try second.write(step: 15, [.scalar(tag: "train/loss", value: 15)])
        XCTAssertEqual(try taggedSteps(), ["config": [0, 10], "train/loss": [5, 10, 15]])

        // Resumed again from step 10: the second file's start (config at 10) and step 15 go too.
        try EventFileWriter.truncate(filesIn: directory, resumingAt: 10, restartTags: ["config"])
        let third = try EventFileWriter(directory: directory)
        try third.write(step: 10, [.text(tag: "config", "third")])
        for step in [15, 20] { try third.write(step: step, [.scalar(tag: "train/loss", value: Float(step))]) }
        try third.write(step: 20, [.scalar(tag: "test/loss", value: 1)])
        XCTAssertEqual(try taggedSteps(), ["config": [0, 10], "train/loss": [5, 10, 15, 20], "test/loss": [20]])
        XCTAssertEqual(EventFileWriter.files(in: directory).count, 3)
    }

    func testMetricNamesMapToTags() {
        XCTAssertEqual(MetricName.tag("test_loss"), "test/loss")
        XCTAssertEqual(MetricName.tag("val_accuracy"), "val/accuracy")
        XCTAssertEqual(MetricName.tag("test_r2"), "test/r2")
        XCTAssertEqual(MetricName.tag("train_loss"), "train/loss")
        XCTAssertEqual(MetricName.tag("lr"), "train/lr")
        XCTAssertEqual(MetricName.tag("samples_per_second"), "train/samples_per_second")
        XCTAssertEqual(MetricName.tag("testing"), "train/testing")
    }
}
