import AsyncHTTPClient
import Foundation
import HTTPTypes
import HummingbirdTesting
import HummingbirdWSClient
import Logging
import NIOCore
import Testing
import WrennHTTP
import WrennServer
import WrennTestSupport
import WrennWire

/// A hostile page against a signed-in user (issue 11 items 1 and 3, issue 12's WebSocket refusals and selectors): a
/// browser-less client that carries only the victim's session cookie and a foreign `Origin`, as any page a browser
/// shows may; the API's own headers on every answer; WebSocket refusals as HTTP statuses before any upgrade.
@Suite("a hostile page gets nothing", .serialized)
struct HostilePageTests {
    /// The hostile-guest platform (its hostile envd unused here): alice (signed in, the platform admin) and `a`, an
    /// API key of her team; bob, signed in, of another team.
    typealias Setup = HostileGuestTests.Platform

    static func withSetup(configure: @escaping @Sendable (inout ServerConfig) -> Void = { _ in },
                          _ body: @Sendable @escaping (Setup) async throws -> Void) async throws {
        try await HostileGuestTests.withPlatform(configure: configure, body)
    }

    static func upgrade(_ s: Setup, _ path: String, headers: [String: String]) async throws -> RawWebSocket.Handshake {
        let port = s.port
        return try await Task.detached { try RawWebSocket.handshake(port: port, host: "localhost:8080", path: path, headers: headers) }.value
    }

    @Test("a cookie-only upgrade from a foreign Origin is refused before it runs anything")
    func crossSiteWebSocketHijackingIsRefused() async throws {
        try await Self.withSetup { s in
            let id = try await HostileGuestTests.capsule(s.a)
            let cookie = s.alice.cookieHeader
            for path in ["/v1/capsules/\(id)/exec/stream", "/v1/capsules/\(id)/pty", "/v1/capsules/\(id)/processes/proc-x/stream",
                         "/v1/admin/capsules/\(id)/exec/stream", "/v1/admin/capsules/\(id)/pty",
                         "/v1/admin/builds/bld-00000000000000000000000000/stream"] {
                for origin in ["https://evil.example", "null", "http://8888-\(id).localhost:8080"] {
                    let refused = try await Self.upgrade(s, path, headers: ["Cookie": cookie, "Origin": origin])
                    #expect(refused.status == 403, "\(path) from \(origin): \(refused.statusLine)")
                    #expect(refused.errorCode == "forbidden", "\(path): \(refused.text)")
                    #expect(refused.headers["x-content-type-options"] == "nosniff")
                    #expect(refused.socket == nil)
                }
            }
            // The dashboard's origin (the public URL's, or the frontend's) may.
            for origin in ["http://localhost:8080", "http://app.localhost"] {
                let allowed = try await Self.upgrade(s, "/v1/capsules/\(id)/exec/stream", headers: ["Cookie": cookie, "Origin": origin])
                #expect(allowed.status == 101, "\(origin): \(allowed.statusLine)")
            }
            // A non-browser client with a cookie (swift-websocket names the socket's own `ws://` URL) is no page.
            let tool = try await Self.upgrade(s, "/v1/capsules/\(id)/exec/stream", headers: ["Cookie": cookie, "Origin": "ws://127.0.0.1"])
            #expect(tool.status == 101)
            // An API key is not a cookie: any origin, as before.
            let key = try #require(s.a.apiKey)
            let keyed = try await Self.upgrade(s, "/v1/capsules/\(id)/exec/stream", headers: ["X-API-Key": key, "Origin": "https://evil.example"])
            #expect(keyed.status == 101)
        }
    }

    @Test("extra allowed origins come from the configuration")
    func allowedOriginsAreConfigurable() async throws {
        try await Self.withSetup(configure: { $0.edge.allowedOrigins = ["https://console.example:8443"] }) { s in
            let id = try await HostileGuestTests.capsule(s.a)
            let ok = try await Self.upgrade(s, "/v1/capsules/\(id)/pty", headers: ["Cookie": s.alice.cookieHeader,
                                                                                 "Origin": "https://CONSOLE.example:8443"])
            #expect(ok.status == 101)
            let other = try await Self.upgrade(s, "/v1/capsules/\(id)/pty", headers: ["Cookie": s.alice.cookieHeader,
                                                                                    "Origin": "https://console.example"])
            #expect(other.status == 403)
        }
    }

    @Test("WebSocket refusals are HTTP statuses with the envelope, before any upgrade")
    func refusalsBeforeTheUpgrade() async throws {
        try await Self.withSetup { s in
            let id = try await HostileGuestTests.capsule(s.a)
            let key = try #require(s.a.apiKey)
            let none = try await Self.upgrade(s, "/v1/capsules/\(id)/exec/stream", headers: [:])
            #expect(none.status == 401 && none.errorCode == "unauthorized")
            let unknown = try await Self.upgrade(s, "/v1/capsules/cl-00000000000000000000000000/pty", headers: ["X-API-Key": key])
            #expect(unknown.status == 404 && unknown.errorCode == "not_found")
            // Another team's capsule is a 404 too.
            let foreign = try await Self.upgrade(s, "/v1/capsules/\(id)/pty", headers: ["Cookie": s.bob.cookieHeader])
            #expect(foreign.status == 404)
            // Bob is no admin: 403 on the admin stream.
            let notAdmin = try await Self.upgrade(s, "/v1/admin/capsules/\(id)/pty", headers: ["Cookie": s.bob.cookieHeader])
            #expect(notAdmin.status == 403)
            #expect(try await s.a.post("/v1/capsules/\(id)/pause").status == .accepted)
            _ = try await CapsuleAPITests.wait(s.a, id, for: .paused)
            let paused = try await Self.upgrade(s, "/v1/capsules/\(id)/exec/stream", headers: ["X-API-Key": key])
            #expect(paused.status == 409 && paused.errorCode == "invalid_state", "\(paused.statusLine) \(paused.text)")
            #expect(paused.headers["content-type"] == "application/json; charset=utf-8")
            #expect(paused.headers["content-security-policy"]?.contains("default-src 'none'") == true)
        }
    }

    @Test("envd's close code and reason reach the client")
    func closeReasonIsForwarded() async throws {
        try await Self.withSetup { s in
            let id = try await HostileGuestTests.capsule(s.a)
            var headers = HTTPFields()
            headers[HTTPField.Name("X-API-Key")!] = try #require(s.a.apiKey)
            var logger = Logger(label: "test.ws")
            logger.logLevel = .critical
            let close = try await WebSocketClient.connect(url: "ws://127.0.0.1:\(s.port)/v1/capsules/\(id)/exec/stream",
                                                          configuration: .init(additionalHeaders: headers), logger: logger) { inbound, outbound, _ in
                try await outbound.write(.text(#"{"type":"start","cmd":"/bin/true"}"#))
                for try await _ in inbound.messages(maxSize: 1 << 20) {}
            }
            #expect(close?.closeCode == .normalClosure)
            #expect(close?.reason == "process exited")
        }
    }

    @Test("processes are reached by tags with every allowed character, team and admin")
    func selectorsWithAnyTag() async throws {
        try await Self.withSetup { s in
            let id = try await HostileGuestTests.capsule(s.a)
            // Every printable ASCII character a tag may hold (all but space and `/`), split over a few tags, and Unicode.
            let tags = ["a-b_c.d~e", "!\"#$%&'()*+,", ":;<=>?@[\\]^`{|}", "ünï-ß"]
            for (index, tag) in tags.enumerated() {
                let started = try await CapsuleAPITests.exec(s.a, id, "sleep 60", extra: ["background": true, "tag": tag])
                #expect(started.status == .accepted, "\(tag): \(started.status)")
                let encoded = tag.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? tag
                // Attach by tag (the stream replays and the process is found), then kill it.
                let prefix = index % 2 == 0 ? "/v1/capsules/\(id)" : "/v1/admin/capsules/\(id)"
                let client = index % 2 == 0 ? s.a : s.alice
                var headers: [String: String] = [:]
                if let key = client.apiKey { headers["X-API-Key"] = key } else { headers["Cookie"] = client.cookieHeader }
                let attach = try await Self.upgrade(s, "\(prefix)/processes/\(encoded)/stream", headers: headers)
                #expect(attach.status == 101, "\(tag): \(attach.statusLine) \(attach.text)")
                if let socket = attach.socket {
                    let first = try await Task.detached { try socket.receive() }.value
                    #expect(String(decoding: first.payload, as: UTF8.self).contains("\"start\""), "\(tag)")
                }
                let killed = try await client.delete("\(prefix)/processes/\(encoded)")
                #expect(killed.status == .noContent, "\(tag): \(killed.status) \(killed.errorMessage ?? "")")
            }
            // Unencoded, as most clients send them: a tag of unreserved characters, and a default `proc-…` tag.
            #expect(try await CapsuleAPITests.exec(s.a, id, "sleep 60", extra: ["background": true, "tag": "x-y_z.w~v"]).status == .accepted)
            #expect(try await s.a.delete("/v1/capsules/\(id)/processes/x-y_z.w~v").status == .noContent)
            let started = try await CapsuleAPITests.exec(s.a, id, "sleep 60", extra: ["background": true])
            let tag = try started.decode(BackgroundExecResponse.self).tag
            #expect(tag.hasPrefix("proc-"))
            #expect(try await s.a.delete("/v1/capsules/\(id)/processes/\(tag)").status == .noContent)
        }
    }

    @Test("every API answer has nosniff and a CSP that allows nothing; a page's own CSP is kept")
    func apiSecurityHeaders() async throws {
        try await Self.withSetup { s in
            for response in [try await s.a.get("/health"), try await s.a.get("/v1/nope"), try await s.a.get("/v1/capsules"),
                             try await s.cp.browser().get("/v1/capsules"), try await s.a.get("/metrics")] {
                #expect(response.headers[.xContentTypeOptions] == "nosniff")
                #expect(response.headers[.contentSecurityPolicy] == "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
            }
            var headers = HTTPFields()
            headers[.contentSecurityPolicy] = "default-src 'self'"
            SecurityHeaders.apply(to: &headers)
            #expect(headers[.contentSecurityPolicy] == "default-src 'self'")
            #expect(headers[.xContentTypeOptions] == "nosniff")
        }
    }

    @Test("event streams are capped per caller with 429 and Retry-After")
    func eventStreamsAreCapped() async throws {
        try await Self.withSetup(configure: { $0.edge.eventStreamsPerPrincipal = 1 }) { s in
            let key = try #require(s.a.apiKey)
            let http = HTTPClient(eventLoopGroupProvider: .singleton)
            func open(_ header: (String, String)) async throws -> HTTPClientResponse {
                var request = HTTPClientRequest(url: "http://127.0.0.1:\(s.port)/v1/events/stream")
                request.headers.add(name: header.0, value: header.1)
                return try await http.execute(request, timeout: .seconds(30))
            }
            do {
                // The first stream is open (its head arrived) and holds the key's only place.
                let first = try await open(("X-API-Key", key))
                #expect(first.status == .ok)
                let second = try await open(("X-API-Key", key))
                #expect(second.status == .tooManyRequests)
                #expect(second.headers.first(name: "Retry-After") != nil)
                let envelope = try await second.body.collect(upTo: 1 << 16)
                #expect(String(buffer: envelope).contains("too_many_requests"))
                // Another caller has a share of its own.
                #expect(try await open(("Cookie", s.alice.cookieHeader)).status == .ok)
            } catch {
                try? await http.shutdown()
                throw error
            }
            try await http.shutdown()
        }
    }
}
