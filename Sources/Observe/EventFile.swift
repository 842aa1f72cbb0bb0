import Formats
import Foundation
import Support

/// One value of a TensorBoard summary (`Summary.Value`): a scalar, a histogram or text.
enum SummaryValue: Equatable {
    case scalar(tag: String, value: Float)
    case histogram(tag: String, Histogram)
    /// Markdown shown by TensorBoard's text plugin.
    case text(tag: String, String)

    var tag: String {
        switch self {
        case let .scalar(tag, _), let .histogram(tag, _), let .text(tag, _): return tag
        }
    }

    // Summary.Value: tag = 1, simple_value = 2, histo = 5, tensor = 8, metadata = 9.
    fileprivate func encode(into writer: inout ProtobufWriter) {
        writer.string(1, tag)
        switch self {
        case let .scalar(_, value):
            writer.float(2, value)
        case let .histogram(_, histogram):
            writer.message(5) { histogram.encode(into: &$0) }
        case let .text(_, text):
            // TensorProto dtype DT_STRING (7), scalar shape, string_val; SummaryMetadata.plugin_data.plugin_name "text".
            writer.message(8) { tensor in
                tensor.varint(1, 7)
                tensor.message(2) { _ in }
                tensor.string(8, text)
            }
            writer.message(9) { metadata in metadata.message(1) { $0.string(1, "text") } }
        }
    }
}

/// TensorBoard's `HistogramProto`: counts of values in buckets, each bucket ending at its limit.
struct Histogram: Equatable {
    var minimum = 0.0, maximum = 0.0, count = 0.0, sum = 0.0, sumOfSquares = 0.0
    /// Upper edge of each bucket (the first bucket starts at `minimum`).
    var bucketLimits: [Double] = []
    var bucketCounts: [Double] = []

    /// A histogram of `values` in `buckets` equal-width buckets between their minimum and maximum (non-finite values
    /// are left out, as TensorBoard cannot place them).
    init<Values: Collection>(_ values: Values, buckets: Int = 30) where Values.Element == Float {
        var low = Double.infinity, high = -Double.infinity
        for value in values where value.isFinite {
            let value = Double(value)
            low = min(low, value); high = max(high, value)
            count += 1; sum += value; sumOfSquares += value * value
        }
        guard count > 0 else { return }
        (minimum, maximum) = (low, high)
        let width = (high - low) / Double(buckets)
        guard width > 0 else {
            (bucketLimits, bucketCounts) = ([high], [count])
            return
        }
        bucketLimits = (1...buckets).map { low + width * Double($0) }
        bucketLimits[buckets - 1] = high
        bucketCounts = [Double](repeating: 0, count: buckets)
        for value in values where value.isFinite {
            bucketCounts[min(buckets - 1, Int((Double(value) - low) / width))] += 1
        }
    }

    // HistogramProto: min 1, max 2, num 3, sum 4, sum_squares 5, bucket_limit 6 and bucket 7 (packed doubles).
    fileprivate func encode(into writer: inout ProtobufWriter) {
        writer.double(1, minimum); writer.double(2, maximum); writer.double(3, count)
        writer.double(4, sum); writer.double(5, sumOfSquares)
        writer.packedDoubles(6, bucketLimits); writer.packedDoubles(7, bucketCounts)
    }
}

/// The TensorBoard event file a run (rank 0) writes, `events.out.tfevents.SECONDS.HOST`: TFRecords of `Event`
/// messages, each record written to the file as soon as it is made, so TensorBoard can follow a running job.
///
/// Every run, a resumed one too, starts a new file (a crash may have torn the last one); its name sorts after the
/// files already in the directory, which is the order TensorBoard reads them in.
final class EventFileWriter {
    let path: String
    private let descriptor: Int32

    /// The prefix TensorBoard recognises event files by (named with the run directory's other files).
    static let filePrefix = RunDirectory.eventFilePrefix

    /// Creates a new event file in `directory` and writes its version record.
    init(directory: String) throws {
        let existing = EventFileWriter.files(in: directory)
        // A name that sorts after every existing file: its zero-padded time, later than theirs.
        let latest = existing.compactMap { Int(($0 as NSString).lastPathComponent.dropFirst(Self.filePrefix.count).prefix(10)) }.max()
        let seconds = max(Int(Date().timeIntervalSince1970), (latest ?? 0) + 1)
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "localhost"
        path = (directory as NSString).appendingPathComponent(Self.filePrefix + String(format: "%010d", seconds) + "." + host)
        descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0o644)
        if descriptor < 0 { throw UserError("\(path): cannot create the TensorBoard event file: \(FileIO.errorText(errno))") }
        do {
            try append(Self.event(wallTime: Date().timeIntervalSince1970, fileVersion: "brain.Event:2"))
        } catch {
            close(descriptor)
            throw error
        }
    }

    deinit { close(descriptor) }

    /// The event files of `directory`, in the order TensorBoard reads them (by name).
    static func files(in directory: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasPrefix(filePrefix) }.sorted().map { (directory as NSString).appendingPathComponent($0) }
    }

    /// Writes one event holding `values` at `step` (nothing when there are no values).
    func write(step: Int, _ values: [SummaryValue]) throws {
        guard !values.isEmpty else { return }
        try append(Self.event(wallTime: Date().timeIntervalSince1970, step: step, values: values))
    }

    private func append(_ event: [UInt8]) throws {
        var record: [UInt8] = []
        TFRecord.append(event, to: &record)
        try FileIO.writeAll(record, to: descriptor, path: path)
    }

    /// A serialized `Event` (wall_time = 1, step = 2, file_version = 3, summary = 5) holding either the file's version
    /// or a summary of `values`; fields in number order and a zero step left out, as protobuf's own encoder does.
    static func event(wallTime: Double, step: Int = 0, fileVersion: String? = nil, values: [SummaryValue] = []) -> [UInt8] {
        var event = ProtobufWriter()
        event.double(1, wallTime)
        if step != 0 { event.varint(2, Int64(step)) }
        if let fileVersion { event.string(3, fileVersion) }
        if !values.isEmpty {
            event.message(5) { summary in
                for value in values { summary.message(1) { value.encode(into: &$0) } }
            }
        }
        return event.bytes
    }
}

/// An event as read back from a file: its step and the tags of its summary values (none for the version record).
struct EventSummary: Equatable {
    var step: Int
    var tags: [String]

    /// Reads the step and tags of a serialized `Event`; nil if it is not one.
    init?(_ record: ArraySlice<UInt8>) {
        guard let fields = ProtobufReader.fields(of: record) else { return nil }
        step = 0
        tags = []
        for (field, value) in fields {
            switch (field, value) {
            case let (2, .integer(raw)): step = Int(Int64(bitPattern: raw))
            case let (5, .bytes(summary)):
                guard let values = ProtobufReader.fields(of: summary) else { return nil }
                for case let (1, .bytes(value)) in values {
                    guard let valueFields = ProtobufReader.fields(of: value) else { return nil }
                    for case let (1, .bytes(tag)) in valueFields { tags.append(String(decoding: tag, as: UTF8.self)) }
                }
            default: break
            }
        }
    }
}

extension EventFileWriter {
    /// Before a run resumed at `step` writes its own file: rewrites each event file of `directory` (atomically) to
    /// hold only its intact records that the resumed run will not write again — those before `step`, and those at
    /// `step` without any of `restartTags` (what a run writes when it starts) — so no (tag, step) appears twice
    /// across the files. TensorBoard's reader would otherwise silently purge the later steps.
    static func truncate(filesIn directory: String, resumingAt step: Int, restartTags: Set<String>) throws {
        for path in files(in: directory) {
            let bytes = try FileIO.readBytes(path: path)
            let (records, intact) = TFRecord.records(in: bytes)
            let kept = records.filter { record in
                guard let event = EventSummary(record), !event.tags.isEmpty else { return true }
                return event.step < step || (event.step == step && restartTags.isDisjoint(with: event.tags))
            }
            guard !intact || kept.count < records.count else { continue }
            var output: [UInt8] = []
            for record in kept { TFRecord.append(Array(record), to: &output) }
            try FileIO.writeAtomically(output, to: path)
        }
    }
}
