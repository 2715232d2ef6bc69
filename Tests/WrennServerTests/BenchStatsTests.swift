import Testing
import WrennServer

/// The statistics `wrenn bench api` prints (values only; no timing is asserted anywhere).
@Suite("bench statistics")
struct BenchStatsTests {
    @Test func nearestRankPercentiles() {
        let values = (1...100).map(Double.init).shuffled()
        #expect(BenchStats.percentile(values, 50) == 50)
        #expect(BenchStats.percentile(values, 99) == 99)
        #expect(BenchStats.percentile(values, 100) == 100)
        #expect(BenchStats.percentile(values, 0) == 1)
        #expect(BenchStats.percentile([7], 99) == 7)
        #expect(BenchStats.percentile([], 50) == 0)
        // Ten samples: p99 is the largest, p50 the fifth smallest.
        let ten = [10.0, 1, 9, 2, 8, 3, 7, 4, 6, 5]
        #expect(BenchStats.percentile(ten, 99) == 10)
        #expect(BenchStats.percentile(ten, 50) == 5)
    }

    @Test func summary() {
        let summary = BenchStats.summary([0.004, 0.002, 0.003, 0.001])
        #expect(summary.count == 4)
        #expect(summary.p50 == 0.002)
        #expect(summary.p99 == 0.004)
        #expect(abs(summary.mean - 0.0025) < 1e-12)
    }

    @Test func reportRatios() {
        let fast = BenchStats.Summary(p50: 0.010, p99: 0.020, mean: 0.012, count: 10)
        let slow = BenchStats.Summary(p50: 0.0125, p99: 0.030, mean: 0.014, count: 10)
        let report = APIBenchmark.Report(apiCreate: slow, agentCreate: fast, apiExec: slow, agentExec: fast, listThroughput: 1000,
                                         listLatency: fast, concurrency: 64)
        #expect(abs((report.createRatio ?? 0) - 1.25) < 1e-9)
        #expect(abs((report.execOverhead ?? 0) - 0.0025) < 1e-9)
        #expect(report.text.contains("+2.50 ms"))
        let apiOnly = APIBenchmark.Report(apiCreate: slow, agentCreate: nil, apiExec: slow, agentExec: nil, listThroughput: 1000,
                                          listLatency: fast, concurrency: 64)
        #expect(apiOnly.createRatio == nil && apiOnly.execOverhead == nil)
    }
}
