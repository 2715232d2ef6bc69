import Foundation
import Testing
import WrennEnvd

@Suite("envd benchmark")
struct BenchmarkTests {
    @Test("the benchmark runs envd in-process and reports every figure (no timing asserted)")
    func benchmarkRuns() async throws {
        // WRENN_ENVD_BENCH_FULL=1 runs the default sizes and prints the figures.
        let full = ProcessInfo.processInfo.environment["WRENN_ENVD_BENCH_FULL"] != nil
        let iterations = full ? 300 : 5
        let result = try await withTimeout(300) {
            try await runEnvdBenchmark(execIterations: iterations, fileMegabytes: full ? 256 : 4, report: { if full { print($0) } })
        }
        #expect(result.execIterations == iterations)
        #expect(result.execRoundTripP50Ms > 0 && result.execRoundTripP99Ms >= result.execRoundTripP50Ms)
        #expect(result.fileWriteMBps > 0 && result.fileReadMBps > 0)
        #expect(result.fileBytes == (full ? 256 : 4) << 20)
    }
}
