import Testing
@testable import WrennAgent

@Suite("Metrics")
struct MetricsTests {
    @Test func parsesCPUTimeFromStat() {
        let stat = "4242 (qemu-system-x86) S 1 4242 4242 0 -1 4194624 100 0 0 0 250 50 0 0 20 0 5 0 100 0 0"
        #expect(ProcessCPU.parse(stat: stat, ticksPerSecond: 100) == 3.0)
        #expect(ProcessCPU.parse(stat: "garbage") == nil)
        #expect(ProcessCPU.percent(from: 1, to: 1.5, interval: 0.5, vcpus: 2) == 50)
        #expect(ProcessCPU.percent(from: 1, to: 9, interval: 0.5, vcpus: 1) == 100)
    }

    @Test func tiersRollUpAndExpire() {
        var tiers = MetricsTiers()
        // 1 hour of samples every 0.5 s, CPU equal to the minute number.
        var t = 1_800_000_000.0
        let end = t + 3600
        while t < end {
            tiers.add(CapsuleSample(timestamp: t, cpuPercent: (t / 60).rounded(.down).truncatingRemainder(dividingBy: 100), memoryBytes: 1, diskBytes: 2))
            t += 0.5
        }
        #expect(tiers.raw.count == 1201)  // 10 minutes inclusive of both ends
        #expect(tiers.halfMinute.count == 119)  // 2 h window, the open bucket not yet closed
        #expect(tiers.fiveMinute.count == 11)
        let first = tiers.halfMinute[0]
        #expect(first.timestamp.truncatingRemainder(dividingBy: 30) == 0)
        #expect(first.memoryBytes == 1 && first.diskBytes == 2)
        #expect(MetricsSampler.vmRSS("Name:\tqemu\nVmRSS:\t  102940 kB\n") == Double(105_410_560))
    }
}
