import Foundation
import Testing
import WrennEnvd

@Suite("envd benchmark")
struct BenchmarkTests {
    @Test("the benchmark runs envd in-process and reports every figure (no timing asserted)")
    func benchmarkRuns() async throws {
        let result = try await withTimeout(120) {
            try await runEnvdBenchmark(execIterations: 5, fileMegabytes: 4, report: { _ in })
        }
        #expect(result.execIterations == 5)
        #expect(result.execRoundTripP50Ms > 0 && result.execRoundTripP99Ms >= result.execRoundTripP50Ms)
        #expect(result.fileWriteMBps > 0 && result.fileReadMBps > 0)
        #expect(result.fileBytes == 4 << 20)
    }
}
