import Foundation
import Logging

/// Samples every running capsule's VMM every 500 ms (CPU % normalized to vCPUs, resident memory, overlay bytes)
/// into ``MetricsTiers``. Tiers are kept per capsule id while the capsule exists, paused or not.
public actor MetricsSampler {
    private let runtime: QemuMicrovmRuntime
    private let interval: Duration
    private var tiers: [String: MetricsTiers] = [:]
    private var lastCPU: [String: (pid: Int32, cpu: Double, at: Double)] = [:]

    /// Creates a sampler over `runtime`.
    public init(runtime: QemuMicrovmRuntime, interval: Duration = .milliseconds(500)) {
        self.runtime = runtime
        self.interval = interval
    }

    /// Samples until the task is cancelled.
    public func run() async {
        while !Task.isCancelled {
            await sampleOnce()
            try? await Task.sleep(for: interval)
        }
    }

    /// Takes one sample of every running capsule and forgets capsules that no longer exist.
    public func sampleOnce() async {
        let capsules = await runtime.list()
        let ids = Set(capsules.map(\.id))
        tiers = tiers.filter { ids.contains($0.key) }
        lastCPU = lastCPU.filter { ids.contains($0.key) }
        let now = Date().timeIntervalSince1970
        for capsule in capsules where capsule.state == .running {
            guard let pid = capsule.pid, let cpu = ProcessCPU.seconds(pid: pid) else { continue }
            var percent = 0.0
            if let last = lastCPU[capsule.id], last.pid == pid {
                percent = ProcessCPU.percent(from: last.cpu, to: cpu, interval: now - last.at, vcpus: capsule.vcpus)
            }
            lastCPU[capsule.id] = (pid, cpu, now)
            let layout = runtime.layout(of: capsule.id)
            let memory = ProcessMemory.readProcFile("/proc/\(pid)/status").flatMap(Self.vmRSS) ?? 0
            let sample = CapsuleSample(timestamp: now, cpuPercent: percent, memoryBytes: memory,
                                       diskBytes: Double(DiskManager.allocatedBytes(layout.disk)))
            tiers[capsule.id, default: MetricsTiers()].add(sample)
        }
    }

    /// The tiers of one capsule (empty if never sampled).
    public func metrics(of id: String) -> MetricsTiers { tiers[id] ?? MetricsTiers() }

    static func vmRSS(_ status: String) -> Double? {
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.count >= 2, let kib = Double(fields[1].trimmingCharacters(in: .whitespaces)) { return kib * 1024 }
        }
        return nil
    }
}
