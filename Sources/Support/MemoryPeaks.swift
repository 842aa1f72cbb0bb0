import Foundation

/// This process's memory as Linux reports it in /proc/self/status: the peak resident set (the kernel's `VmHWM`) and
/// the peak of its private, anonymous part (`RssAnon`, sampled by a background thread every `interval` seconds and
/// whenever `sample()` is called), so a run can show it never held its data files in private memory.
public final class MemoryPeaks: @unchecked Sendable {
    /// The process's sampler, started by the first use.
    public static let process = MemoryPeaks(interval: 0.05)

    private let lock = NSLock()
    private var privatePeak: Int64 = 0

    private init(interval: Double) {
        sample()
        let thread = Thread { [weak self] in
            while let self {
                self.sample()
                Thread.sleep(forTimeInterval: interval)
            }
        }
        thread.name = "memory-peaks"
        thread.start()
    }

    /// Reads the private (anonymous) resident size now and keeps it when it is the largest yet.
    public func sample() {
        guard let anonymous = MemoryPeaks.statusField("RssAnon") else { return }
        lock.lock()
        privatePeak = max(privatePeak, anonymous)
        lock.unlock()
    }

    /// The peak resident set size in bytes (0 where /proc does not say).
    public var residentPeakBytes: Int64 { MemoryPeaks.statusField("VmHWM") ?? 0 }

    /// The largest private (anonymous) resident size seen, in bytes.
    public var privatePeakBytes: Int64 {
        sample()
        lock.lock()
        defer { lock.unlock() }
        return privatePeak
    }

    /// A `NAME:   VALUE kB` line of /proc/self/status, in bytes.
    static func statusField(_ name: String) -> Int64? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(name + ":") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 2, let kilobytes = Int64(fields[1]) else { return nil }
            return kilobytes * 1024
        }
        return nil
    }
}
