import Foundation
import Logging
import ServiceLifecycle
import WrennWire

/// Per-capsule resource samples: every 500 ms CPU % of the VMM (normalised to the capsule's vCPUs), its resident
/// memory and the allocated bytes of the disk overlay. Three tiers: 10 min of raw samples, 2 h of 30 s means,
/// 24 h of 5 min means. Samples are taken only while a capsule runs and kept across pause; destroy drops them.
actor CapsuleMetrics: Service {
    struct Series {
        var raw: [AgentMetricPoint] = []
        var mid: [AgentMetricPoint] = []
        var long: [AgentMetricPoint] = []
        var midBucket: [AgentMetricPoint] = []
        var longBucket: [AgentMetricPoint] = []
        var lastCPU: (ticks: UInt64, at: ContinuousClock.Instant)?
    }

    static let rawInterval: Duration = .milliseconds(500)
    static let ranges: [String: (tier: Int, seconds: Double)] = [
        "5m": (0, 300), "10m": (0, 600), "1h": (1, 3600), "2h": (1, 7200), "6h": (2, 21_600), "12h": (2, 43_200),
        "24h": (2, 86_400),
    ]

    private let runtime: any Runtime
    private let capsulesDirectory: String?
    private var series: [String: Series] = [:]
    private let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    init(runtime: any Runtime) {
        self.runtime = runtime
        self.capsulesDirectory = (runtime as? QemuMicrovmRuntime)?.config.capsulesDirectory
    }

    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            await sample()
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: Self.rawInterval) }
        }
    }

    /// Points of a capsule in `range` (`5m`…`24h`); nil for an unknown range.
    func points(_ id: String, range: String) -> [AgentMetricPoint]? {
        guard let spec = Self.ranges[range] else { return nil }
        guard let s = series[id] else { return [] }
        let cutoff = Date().addingTimeInterval(-spec.seconds)
        let tier = spec.tier == 0 ? s.raw : spec.tier == 1 ? s.mid : s.long
        return tier.filter { $0.timestamp >= cutoff }
    }

    func remove(_ id: String) { series[id] = nil }

    private func sample() async {
        let now = Date()
        let clock = ContinuousClock.now
        for info in await runtime.list() where info.state == .running {
            guard let pid = info.pid else { continue }
            var s = series[info.id] ?? Series()
            var cpu = 0.0
            if let ticks = Self.cpuTicks(pid) {
                if let last = s.lastCPU, ticks >= last.ticks {
                    let elapsed = (clock - last.at).seconds
                    if elapsed > 0 {
                        cpu = Double(ticks - last.ticks) / ticksPerSecond / elapsed * 100 / Double(max(info.vcpus, 1))
                    }
                }
                s.lastCPU = (ticks, clock)
            }
            let disk = capsulesDirectory.map { Self.allocatedBytes($0 + "/" + info.id + "/disk.qcow2") } ?? 0
            let point = AgentMetricPoint(timestamp: now, cpuPercent: min(cpu, 100), memoryBytes: Self.residentBytes(pid), diskBytes: disk)
            Self.append(point, to: &s)
            series[info.id] = s
        }
    }

    static func append(_ point: AgentMetricPoint, to s: inout Series) {
        s.raw.append(point)
        if s.raw.count > 1200 { s.raw.removeFirst(s.raw.count - 1200) }
        s.midBucket.append(point)
        if let first = s.midBucket.first, point.timestamp.timeIntervalSince(first.timestamp) >= 30 {
            s.mid.append(mean(s.midBucket))
            if s.mid.count > 240 { s.mid.removeFirst(s.mid.count - 240) }
            s.midBucket.removeAll(keepingCapacity: true)
        }
        s.longBucket.append(point)
        if let first = s.longBucket.first, point.timestamp.timeIntervalSince(first.timestamp) >= 300 {
            s.long.append(mean(s.longBucket))
            if s.long.count > 288 { s.long.removeFirst(s.long.count - 288) }
            s.longBucket.removeAll(keepingCapacity: true)
        }
    }

    static func mean(_ points: [AgentMetricPoint]) -> AgentMetricPoint {
        let n = Double(max(points.count, 1))
        return AgentMetricPoint(
            timestamp: points.last?.timestamp ?? Date(),
            cpuPercent: points.map(\.cpuPercent).reduce(0, +) / n,
            memoryBytes: Int64(Double(points.map(\.memoryBytes).reduce(0, +)) / n),
            diskBytes: points.last?.diskBytes ?? 0)
    }

    /// utime + stime of a process in clock ticks.
    static func cpuTicks(_ pid: Int32) -> UInt64? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the command: state(0) ppid(1) … utime(11) stime(12).
        guard fields.count > 12, let user = UInt64(fields[11]), let system = UInt64(fields[12]) else { return nil }
        return user + system
    }

    /// VmRSS of a process in bytes.
    static func residentBytes(_ pid: Int32) -> Int64 {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return 0 }
        return (line.split(separator: " ").dropFirst().first.flatMap { Int64($0) } ?? 0) * 1024
    }

    /// Allocated (not apparent) size of a file.
    static func allocatedBytes(_ path: String) -> Int64 {
        var st = stat()
        guard stat(path, &st) == 0 else { return 0 }
        return Int64(st.st_blocks) * 512
    }
}
