import Distributed
import Foundation
import Support

/// One timed allreduce size.
struct AllreduceMeasurement: Sendable, Encodable {
    let bytes: Int
    let worldSize: Int
    let calls: Int
    /// Mean seconds per call, the slowest rank's.
    let seconds: Double
    /// Algorithm bandwidth: message bytes per second of one allreduce.
    var algorithmBandwidth: Double { Double(bytes) / seconds }

    enum CodingKeys: String, CodingKey { case bytes, worldSize = "world_size", calls, microseconds, algorithmGBps = "algorithm_gbps" }

    func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(bytes, forKey: .bytes)
        try container.encode(worldSize, forKey: .worldSize)
        try container.encode(calls, forKey: .calls)
        try container.encode(seconds * 1e6, forKey: .microseconds)
        try container.encode(algorithmBandwidth / 1e9, forKey: .algorithmGBps)
    }
}

/// `plexus bench allreduce`: times the Communicator's Float sum allreduce over message sizes.
enum AllreduceBenchmark {
    /// Message sizes in bytes: powers of 2 from 4 KiB to 64 MiB.
    static let sizes = (12...26).map { 1 << $0 }

    /// Times every size on every rank (all ranks must call it); `calls` per size, or by default as many as move
    /// about 1 GiB (at least 5, at most 20,000).
    static func measure(communicator: Communicator, sizes: [Int] = sizes, calls fixedCalls: Int? = nil) throws -> [AllreduceMeasurement] {
        var results: [AllreduceMeasurement] = []
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: (sizes.max() ?? 4) / 4)
        defer { buffer.deallocate() }
        buffer.initialize(repeating: 1e-6)
        for bytes in sizes {
            let slice = UnsafeMutableBufferPointer(rebasing: buffer[0..<(bytes / 4)])
            let calls = fixedCalls ?? max(5, min(20_000, (1 << 30) / bytes))
            for _ in 0..<3 { try communicator.allreduceSum(slice) }
            try communicator.barrier()
            let start = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<calls { try communicator.allreduceSum(slice) }
            let elapsed = Int64(DispatchTime.now().uptimeNanoseconds - start)
            let slowest = try communicator.allreduceMax(elapsed)
            results.append(AllreduceMeasurement(bytes: bytes, worldSize: communicator.size, calls: calls, seconds: Double(slowest) * 1e-9 / Double(calls)))
        }
        return results
    }

    /// The measurements as an aligned text table.
    static func table(_ results: [AllreduceMeasurement], worldSize: Int, kind: String) -> String {
        var lines = ["allreduce (sum, Float) over \(worldSize) ranks (\(kind)); mean of the calls, slowest rank",
                     "       bytes   calls    time µs   algbw GB/s"]
        for result in results {
            lines.append(pad("\(result.bytes)", 12, left: true) + pad("\(result.calls)", 8, left: true)
                + pad(String(format: "%.1f", result.seconds * 1e6), 11, left: true)
                + pad(String(format: "%.3f", result.algorithmBandwidth / 1e9), 13, left: true))
        }
        return lines.joined(separator: "\n")
    }
}
