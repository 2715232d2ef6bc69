import AsyncHTTPClient
import Foundation
import NIOCore
import Testing
import WrennTestSupport
import WrennWire
@testable import WrennAgent

/// The agent against a hostile envd (issue 11 item 2): every guest reply it reads outside the proxy (health, snapshot
/// prepare/restored) is bounded in size and time and can only end as an answer or a `RuntimeError` — the empty
/// `Content-Length` that used to trap the agent (and `wrenn dev` with it), a chunk size past `Int.max`, oversized
/// headers, endless bodies, slow drips, silence. The proxy passes only listed headers back.
@Suite("the agent survives a hostile envd")
struct HostileEnvdTests {
    static let answers: [String: HostileHTTPServer.Behavior] = [
        "/plain": .raw("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}trailing"),
        "/chunked": .raw("HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"),
        "/empty-length": .raw("HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n{}"),
        "/huge-length": .raw("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999999\r\n\r\n{}"),
        "/negative-length": .raw("HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n{}"),
        "/huge-chunk": .raw("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFFFFFF\r\nab\r\n0\r\n\r\n"),
        "/big-header": .raw("HTTP/1.1 200 OK\r\nX-Big: \(String(repeating: "a", count: 300_000))\r\nContent-Length: 2\r\n\r\n{}"),
        "/many-headers": .raw("HTTP/1.1 200 OK\r\n" + String(repeating: "X-A: b\r\n", count: 70_000) + "Content-Length: 2\r\n\r\n{}"),
        "/no-status": .raw("HTTP/1.1 abc\r\nContent-Length: 2\r\n\r\n{}"),
        "/garbage": .raw("\u{0}\u{1}\u{2}not http at all\r\n\r\n"),
        "/truncated": .raw("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}"),
        "/endless": .endless(head: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                             chunk: "1000\r\n" + String(repeating: "x", count: 0x1000) + "\r\n"),
        "/drip": .drip(head: "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", body: String(repeating: "x", count: 100),
                       interval: .milliseconds(300)),
        "/silent": .silent,
    ]

    static func hostile() async throws -> HostileHTTPServer {
        try await HostileHTTPServer.start { _, target in
            answers[String(target.split(separator: "?").first ?? "")] ?? .raw(HostileHTTPServer.response(
                headers: ["Content-Type: text/html", "Set-Cookie: sid=evil; Domain=example.com", "X-Evil: 1", "Location: https://evil.example"],
                body: "<script>alert(1)</script>"))
        }
    }

    @Test("well-formed replies still read: Content-Length (extra bytes ignored) and chunked")
    func wellFormedReplies() async throws {
        let server = try await Self.hostile()
        defer { Task { await server.stop() } }
        let plain = try await GuestHTTP.request(host: "127.0.0.1", port: server.port, method: "GET", path: "/plain")
        #expect(plain.status == 200 && plain.body == Data("{}".utf8))
        let chunked = try await GuestHTTP.request(host: "127.0.0.1", port: server.port, method: "POST", path: "/chunked")
        #expect(chunked.status == 201 && String(decoding: chunked.body, as: UTF8.self) == "abcde")
    }

    @Test("malformed, oversized, endless, slow and silent replies end as RuntimeError, within their bounds",
          arguments: ["/empty-length", "/huge-length", "/negative-length", "/huge-chunk", "/big-header", "/many-headers", "/no-status",
                      "/garbage", "/truncated", "/endless", "/drip", "/silent"])
    func hostileReplies(_ path: String) async throws {
        let server = try await Self.hostile()
        defer { Task { await server.stop() } }
        let started = ContinuousClock.now
        await #expect(throws: RuntimeError.self, "\(path)") {
            _ = try await GuestHTTP.request(host: "127.0.0.1", port: server.port, method: "POST", path: path,
                                            timeout: .seconds(2), limit: 64 << 10)
        }
        // Bounded in time: the 2 s limit plus scheduling slack, never the drip's 30 s or forever.
        #expect(ContinuousClock.now - started < .seconds(20))
    }

    @Test("EnvdGuestAgent: health, prepare and restored against a hostile envd fail cleanly")
    func guestAgentCalls() async throws {
        let server = try await HostileHTTPServer.start { _, target in
            switch target {
            case "/health": .raw("HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n")
            case "/snapshot/prepare": .raw("HTTP/1.1 204 No Content\r\nContent-Length: \r\n\r\n")
            default: .raw("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7FFFFFFFFFFFFFFFF\r\n")
            }
        }
        defer { Task { await server.stop() } }
        let guest = EnvdGuestAgent()
        #expect(await guest.isHealthy(host: "127.0.0.1", port: server.port) == false)
        await #expect(throws: RuntimeError.self) { try await guest.prepareForSave(host: "127.0.0.1", port: server.port, token: "t") }
        let request = GuestSecrets.restoreRequest(capsuleID: "cl-x", hostname: "x", accessToken: "new")
        await #expect(throws: RuntimeError.self) { try await guest.restored(host: "127.0.0.1", port: server.port, token: "t", request: request) }
    }

    @Test("the agent creates and pauses against a hostile envd, and proxies only listed headers back")
    func agentLifecycleAndProxy() async throws {
        let server = try await HostileHTTPServer.start { _, target in
            switch target {
            case "/health": .raw("HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n")
            case "/snapshot/prepare": .raw("HTTP/1.1 204 No Content\r\nContent-Length: \r\n\r\n")
            default: .raw(HostileHTTPServer.response(
                headers: ["Content-Type: text/html", "Set-Cookie: sid=evil", "X-Evil: 1", "Access-Control-Allow-Origin: *",
                          "Content-Disposition: inline"],
                body: "<script>alert(1)</script>"))
            }
        }
        defer { Task { await server.stop() } }
        let runtime = EnvdBackedRuntime(guest: EnvdGuestAgent())
        await runtime.pointNewCapsulesAt(envdPort: server.port)
        let agent = try await AgentHarness.start(runtime: runtime)
        defer { Task { await agent.shutdown() } }

        let created = try await agent.create("cl-hostile")
        #expect(created.status == 201, "\(created.text)")
        let proxied = try await agent.request(.GET, "/v1/capsules/cl-hostile/envd/processes")
        #expect(proxied.status == 200)
        #expect(proxied.headers["Set-Cookie"].isEmpty)
        #expect(proxied.headers["X-Evil"].isEmpty)
        #expect(proxied.headers["Access-Control-Allow-Origin"].isEmpty)
        #expect(proxied.headers.first(name: "Content-Type") == "text/html")  // the control plane decides what it becomes
        // The agent's own token never reached the guest; envd's did.
        let seen = try #require(server.requests.last { $0.target == "/processes" })
        #expect(seen.header("authorization")?.hasPrefix("Bearer ") == true)
        #expect(seen.header("authorization") != "Bearer \(agent.token)")

        let paused = try await agent.request(.POST, "/v1/capsules/cl-hostile/pause")
        #expect(paused.status == 200, "\(paused.text)")
        #expect(server.requests.contains { $0.target == "/snapshot/prepare" })
        #expect(try await agent.request(.GET, "/v1/host").status == 200)
    }
}
