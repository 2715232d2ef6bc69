import Foundation
import Synchronization
import WrennWire

/// The guest's CPU, memory and disk usage from /proc/stat, /proc/meminfo and statvfs("/").
final class GuestMetrics: Sendable {
    private struct CPUSample {
        let busy: UInt64
        let total: UInt64
        let at: ContinuousClock.Instant
    }

    private let previous = Mutex<CPUSample?>(nil)

    /// Takes a sample. CPU % covers the time since the previous call (or a 100 ms window on the first).
    func sample() async -> EnvdMetrics {
        var first = readCPU()
        let last = previous.withLock { $0 }
        if let last, ContinuousClock.now - last.at >= .milliseconds(50) {
            first = last
        } else {
            try? await Task.sleep(for: .milliseconds(100))
        }
        let now = readCPU()
        previous.withLock { $0 = now }
        var cpu = 0.0
        if let first, let now, now.total > first.total {
            cpu = Double(now.busy &- first.busy) / Double(now.total - first.total) * 100
            cpu = min(max(cpu, 0), 100)
        }
        let memory = readMemory()
        var fs = statvfs()
        var diskTotal: Int64 = 0
        var diskUsed: Int64 = 0
        if statvfs("/", &fs) == 0 {
            diskTotal = Int64(fs.f_blocks) * Int64(fs.f_frsize)
            diskUsed = Int64(fs.f_blocks - fs.f_bfree) * Int64(fs.f_frsize)
        }
        return EnvdMetrics(
            timestampMs: Int64(Date().timeIntervalSince1970 * 1000),
            cpuCount: ProcessInfo.processInfo.activeProcessorCount,
            cpuUsedPct: (cpu * 100).rounded() / 100,
            memTotal: memory.total, memUsed: memory.used, diskTotal: diskTotal, diskUsed: diskUsed
        )
    }

    private func readCPU() -> CPUSample? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") })
        else { return nil }
        let values = line.split(separator: " ").dropFirst().compactMap { UInt64($0) }
        guard values.count >= 4 else { return nil }
        // user nice system idle iowait irq softirq steal (guest time is already counted in user).
        let total = values.prefix(8).reduce(0, +)
        let idle = values[3] + (values.count > 4 ? values[4] : 0)
        return CPUSample(busy: total - idle, total: total, at: .now)
    }

    private func readMemory() -> (total: Int64, used: Int64) {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return (0, 0) }
        var fields: [Substring: Int64] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count >= 2, let value = Int64(parts[1]) else { continue }
            fields[parts[0].dropLast()] = value * 1024
        }
        let total = fields["MemTotal"] ?? 0
        let available = fields["MemAvailable"] ?? fields["MemFree"] ?? 0
        return (total, max(total - available, 0))
    }
}
