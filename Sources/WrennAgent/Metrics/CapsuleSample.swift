import Foundation

/// One metrics point of a capsule, as seen from the host.
public struct CapsuleSample: Sendable, Codable, Equatable {
    /// Seconds since the epoch.
    public var timestamp: Double
    /// VMM CPU use over the last interval, percent of the capsule's vCPUs (0–100).
    public var cpuPercent: Double
    /// VMM resident memory (bytes).
    public var memoryBytes: Double
    /// Host bytes allocated by the capsule's disk overlay.
    public var diskBytes: Double
}

/// Reads a process's CPU time from `/proc/<pid>/stat`.
public enum ProcessCPU {
    /// utime + stime in seconds, or `nil` if the process is gone.
    public static func seconds(pid: Int32) -> Double? {
        guard let text = ProcessMemory.readProcFile("/proc/\(pid)/stat") else { return nil }
        return parse(stat: text)
    }

    /// Parses the stat line (fields after the `)` of the command name; utime and stime are fields 14 and 15).
    public static func parse(stat: String, ticksPerSecond: Double = Double(sysconf(Int32(_SC_CLK_TCK)))) -> Double? {
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // fields[0] is the state (field 3), so utime (field 14) is fields[11], stime fields[12].
        guard fields.count > 12, let utime = Double(fields[11]), let stime = Double(fields[12]), ticksPerSecond > 0 else { return nil }
        return (utime + stime) / ticksPerSecond
    }

    /// CPU percent normalized to `vcpus` from two CPU-time readings `interval` seconds apart.
    public static func percent(from before: Double, to after: Double, interval: Double, vcpus: Int) -> Double {
        guard interval > 0, vcpus > 0 else { return 0 }
        return min(100, max(0, (after - before) / interval / Double(vcpus) * 100))
    }
}
