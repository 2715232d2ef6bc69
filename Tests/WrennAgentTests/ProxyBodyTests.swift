import Hummingbird
import NIOCore
import Testing
@testable import WrennAgent
@testable import WrennProxy

@Suite("envd proxy request bodies")
struct ProxyBodyTests {
    @Test func aSecondReaderGetsAnErrorNotACrash() async throws {
        let tracker = ActivityTracker()
        let lease = tracker.begin("cl-body")
        defer { lease.release() }
        let body = ProxiedBody(body: RequestBody(buffer: ByteBuffer(string: "chunk")), observer: lease)
        var first = body.makeAsyncIterator()
        #expect(try await first.next().map { String(buffer: $0) } == "chunk")
        #expect(try await first.next() == nil)
        var second = body.makeAsyncIterator()
        await #expect(throws: AgentError.self) { _ = try await second.next() }
    }
}
