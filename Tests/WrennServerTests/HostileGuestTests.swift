import AsyncHTTPClient
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import NIOHTTP1
import SQLKit
import Testing
import WrennAgent
import WrennHTTP
@testable import WrennServer
import WrennTestSupport
import WrennWire

/// A hostile guest behind the real agent and control plane (issue 11): a capsule whose "envd" is a `HostileHTTPServer`
/// answering with HTML and script, broken and oversized headers, empty and huge `Content-Length`s, endless bodies,
/// `Set-Cookie`s and slow drips. The agent runs `EnvdBackedRuntime` with the real `EnvdGuestAgent` on pause, so the
/// lifecycle path reads the hostile answers too. Nothing crashes, every refusal is the error envelope with the API's
/// own headers, and another team's capsule (a real envd) keeps answering throughout.
@Suite("a hostile guest gets nothing", .serialized)
struct HostileGuestTests {
    static let html = "<html><script>fetch('/v1/api-keys',{method:'POST'})</script></html>"

    /// What the hostile envd answers, by path.
    static func script(_ method: String, _ target: String) -> HostileHTTPServer.Behavior {
        let path = String(target.split(separator: "?").first ?? "")
        switch path {
        case "/processes":
            return .raw(HostileHTTPServer.response(headers: ["Content-Type: text/html", "Set-Cookie: wrenn_sid=evil; Domain=localhost; Path=/",
                                                             "X-Evil: 1", "Access-Control-Allow-Origin: *"], body: html))
        case "/files/read":
            return .raw(HostileHTTPServer.response(headers: ["Content-Type: text/html; charset=utf-8", "Content-Disposition: inline",
                                                             "Set-Cookie: a=b", "X-Evil: 1"], body: html))
        case "/exec":
            // Valid JSON, but labelled as HTML.
            return .raw(HostileHTTPServer.response(headers: ["Content-Type: text/html", "X-Evil: 1"], body: #"{"cmd":"x","exit_code":0}"#))
        case "/files/mkdir":
            return .raw("HTTP/1.1 200 OK\r\nContent-Length: \r\nContent-Type: application/json\r\n\r\n{}")
        case "/files/remove":
            return .raw("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n{}")
        case "/files/list":
            return .endless(head: "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
                            chunk: "4000\r\n" + String(repeating: "[", count: 0x4000) + "\r\n")
        case "/processes/big":
            return .raw("HTTP/1.1 204 No Content\r\nX-Big: \(String(repeating: "a", count: 200_000))\r\n\r\n")
        case "/snapshot/prepare":
            return .raw("HTTP/1.1 204 No Content\r\nContent-Length: \r\n\r\n")
        case "/health":
            return .raw("HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n")
        default:
            return .raw(HostileHTTPServer.response(status: "404 Not Found", headers: ["Content-Type: text/html"], body: html))
        }
    }

    /// Answers everything with a valid head, then one body byte every half second.
    static func drip(_ method: String, _ target: String) -> HostileHTTPServer.Behavior {
        .drip(head: "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n",
              body: String(repeating: " ", count: 100), interval: .milliseconds(500))
    }

    struct Platform {
        var cp: TestControlPlane
        var agent: LocalAgent
        var hostile: HostileHTTPServer
        /// Team A's API key (its capsule is the hostile one) and team B's.
        var a: Browser
        var b: Browser
        var aTeam: String
        var bTeam: String
        /// Team A's signed-in owner, also the platform admin (the first account), and team B's.
        var alice: Browser
        var bob: Browser
        var port: Int
    }

    /// A control plane and agent, two teams, and the hostile server; `configure` adjusts the control plane.
    static func withPlatform(script: @escaping @Sendable (String, String) -> HostileHTTPServer.Behavior = HostileGuestTests.script,
                             configure: @escaping @Sendable (inout ServerConfig) -> Void = { _ in },
                             _ body: @Sendable @escaping (Platform) async throws -> Void) async throws {
        let hostile = try await HostileHTTPServer.start(script)
        let agent = try await LocalAgent.start(runtime: EnvdBackedRuntime(guest: EnvdGuestAgent()))
        do {
            try await TestControlPlane.run(.sqlite, configure: { config in
                config.agent = .init(url: agent.baseURL, token: agent.token)
                configure(&config)
            }) { cp in
                let alice = try await cp.signedInUser(email: "a@hostile.test")
                let bob = try await cp.signedInUser(email: "b@hostile.test")
                let a = cp.browser(), b = cp.browser()
                a.apiKey = try #require(try await alice.post("/v1/api-keys", json: ["name": "a"]).decode(APIKeyResponse.self).key)
                b.apiKey = try #require(try await bob.post("/v1/api-keys", json: ["name": "b"]).decode(APIKeyResponse.self).key)
                let team = try #require(try await alice.get("/v1/teams").decode([TeamWithRole].self).first?.id)
                let bTeam = try #require(try await bob.get("/v1/teams").decode([TeamWithRole].self).first?.id)
                try await body(Platform(cp: cp, agent: agent, hostile: hostile, a: a, b: b, aTeam: team, bTeam: bTeam, alice: alice, bob: bob,
                                        port: try #require(cp.client.port)))
            }
        } catch {
            await agent.stop()
            await hostile.stop()
            throw error
        }
        await agent.stop()
        await hostile.stop()
    }

    /// A running capsule of `sdk`'s team.
    static func capsule(_ sdk: Browser) async throws -> String {
        let created = try await sdk.post("/v1/capsules", json: [:]).decode(Capsule.self)
        _ = try await CapsuleAPITests.wait(sdk, created.id, for: .running)
        return created.id
    }

    /// Every API answer's own headers: our content type, nosniff, a CSP that allows nothing, no guest header.
    static func expectAPIHeaders(_ response: TestResponse, type: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(response.headers[.contentType] == type, sourceLocation: sourceLocation)
        #expect(response.headers[.xContentTypeOptions] == "nosniff", sourceLocation: sourceLocation)
        #expect(response.headers[.contentSecurityPolicy]?.contains("default-src 'none'") == true, sourceLocation: sourceLocation)
        #expect(response.headers[.setCookie] == nil, sourceLocation: sourceLocation)
        #expect(response.headers[HTTPField.Name("X-Evil")!] == nil, sourceLocation: sourceLocation)
        #expect(response.headers[.accessControlAllowOrigin] == nil, sourceLocation: sourceLocation)
    }

    @Test("guest bytes never reach the API origin as content a browser runs")
    func guestBytesAreNeverServedAsTheirOwnType() async throws {
        try await Self.withPlatform { p in
            let id = try await Self.capsule(p.a)
            let other = try await Self.capsule(p.b)
            await p.agent.runtime.redirectEnvd(id, toPort: p.hostile.port)

            // HTML + script + cookie where JSON belongs: refused as the envelope, nothing of the guest's passes.
            let processes = try await p.a.get("/v1/capsules/\(id)/processes")
            #expect(processes.status == .badGateway)
            #expect(processes.errorCode == "agent_error")
            Self.expectAPIHeaders(processes, type: "application/json; charset=utf-8")
            #expect(!String(buffer: processes.body).contains("<script>"))

            // File bytes are the guest's: a download with our type, never rendered.
            let read = try await p.a.post("/v1/capsules/\(id)/files/read", json: ["path": "/x"])
            #expect(read.status == .ok)
            Self.expectAPIHeaders(read, type: "application/octet-stream")
            #expect(read.headers[.contentDisposition] == "attachment")
            #expect(String(buffer: read.body) == Self.html)
            let streamed = try await p.a.post("/v1/capsules/\(id)/files/stream/read", json: ["path": "/x"])
            Self.expectAPIHeaders(streamed, type: "application/octet-stream")

            // Valid JSON under an HTML label: passed on as JSON.
            let exec = try await p.a.post("/v1/capsules/\(id)/exec", json: ["cmd": "x"])
            #expect(exec.status == .ok)
            Self.expectAPIHeaders(exec, type: "application/json; charset=utf-8")

            // Broken framing: empty and huge Content-Length, a header past the limit, an endless body — the agent or
            // the control plane refuses, the caller gets 502 with the envelope, nobody crashes.
            for (path, json) in [("files/mkdir", ["path": "/d"]), ("files/remove", ["path": "/d"]), ("files/list", ["path": "/"])] {
                let reply = try await p.a.post("/v1/capsules/\(id)/\(path)", json: json)
                #expect(reply.status == .badGateway, "\(path): \(reply.status)")
                #expect(reply.errorCode != nil, "\(path)")
                Self.expectAPIHeaders(reply, type: "application/json; charset=utf-8")
            }
            let big = try await p.a.delete("/v1/capsules/\(id)/processes/big")
            #expect(big.status == .badGateway)
            Self.expectAPIHeaders(big, type: "application/json; charset=utf-8")
            // An HTML error page is no error envelope.
            let missing = try await p.a.delete("/v1/capsules/\(id)/processes/nothing")
            #expect(missing.status == .badGateway && missing.errorCode == "agent_error")
            Self.expectAPIHeaders(missing, type: "application/json; charset=utf-8")

            // The other team noticed nothing.
            let echo = try await CapsuleAPITests.exec(p.b, other, "echo still here")
            #expect(echo.status == .ok)
            #expect(try echo.decode(ExecResponse.self).stdout == "still here\n")
            #expect(try await p.b.get("/v1/capsules/\(other)/processes").status == .ok)
        }
    }

    @Test("a slow drip is cut off by the answer's time bound")
    func slowDripIsCutOff() async throws {
        try await Self.withPlatform(script: Self.drip, configure: { $0.edge.answerBodyTimeout = .seconds(1) }) { p in
            let id = try await Self.capsule(p.a)
            await p.agent.runtime.redirectEnvd(id, toPort: p.hostile.port)
            let reply = try await p.a.get("/v1/capsules/\(id)/processes")
            #expect(reply.status == .badGateway)
            #expect(reply.errorCode == "agent_error")
            #expect(reply.errorMessage?.contains("did not finish") == true, "\(reply.errorMessage ?? "")")
        }
    }

    @Test("an empty Content-Length from envd on pause or at create does not take anything down")
    func malformedAnswersOnTheLifecyclePath() async throws {
        try await Self.withPlatform { p in
            // Created while envd's /health answers with an empty Content-Length: the create still succeeds.
            await p.agent.runtime.pointNewCapsulesAt(envdPort: p.hostile.port)
            let id = try await Self.capsule(p.a)
            await p.agent.runtime.pointNewCapsulesAt(envdPort: nil)
            // Pause reads envd's answer to /snapshot/prepare (empty Content-Length): logged, the pause goes on.
            #expect(try await p.a.post("/v1/capsules/\(id)/pause").status == .accepted)
            _ = try await CapsuleAPITests.wait(p.a, id, for: .paused)
            #expect(p.hostile.requests.contains { $0.target == "/snapshot/prepare" })
            // Everything still answers.
            #expect(try await p.a.get("/health").status == .ok)
            let other = try await Self.capsule(p.b)
            #expect(try await CapsuleAPITests.exec(p.b, other, "true").status == .ok)
            #expect(try await p.b.post("/v1/capsules/\(other)/pause").status == .accepted)
            _ = try await CapsuleAPITests.wait(p.b, other, for: .paused)
        }
    }

    @Test("a capsule app cannot set cookies for the API's domain through the port proxy")
    func portProxyCookiesAreHostOnly() async throws {
        let app = try await HostileHTTPServer.start { _, _ in
            .raw(HostileHTTPServer.response(headers: [
                "Content-Type: text/html", "Set-Cookie: theme=dark; Domain=localhost; Path=/; HttpOnly",
                "Set-Cookie: wrenn_sid=fixated; Domain=.localhost; Path=/", "Set-Cookie: WRENN_CSRF=x",
                "Set-Cookie: wrenn_proxy_token=forged", "Strict-Transport-Security: max-age=99999999; includeSubDomains",
                "X-App: kept",
            ], body: "<p>app</p>"))
        }
        defer { Task { await app.stop() } }
        try await Self.withPlatform { p in
            let id = try await Self.capsule(p.a)
            let key = try #require(p.a.apiKey)
            let (response, body) = try await PortProxyTests.send(p.port, host: "\(app.port)-\(id).localhost:8080", "/", key: key,
                                                                 headers: [("Cookie", "wrenn_sid=victim; mine=1")])
            #expect(response.status == .ok)
            #expect(String(buffer: body) == "<p>app</p>")
            #expect(response.headers["Set-Cookie"] == ["theme=dark; Path=/; HttpOnly"])
            #expect(response.headers.first(name: "Strict-Transport-Security") == nil)
            #expect(response.headers.first(name: "X-App") == "kept")
            // The app's own origin: no API policy forced on it.
            #expect(response.headers.first(name: "Content-Security-Policy") == nil)
            // The app never saw the platform's credentials.
            let seen = try #require(app.requests.last)
            #expect(seen.header("x-api-key") == nil)
            #expect(seen.header("cookie") == "mine=1")
        }
    }

    @Test("team A's long execs do not starve team B on the same host; A's share ends in 429")
    func oneTenantCannotStarveAnother() async throws {
        try await Self.withPlatform(configure: { $0.edge.dataPlaneCallsPerTeam = 8 }) { p in
            let a = try await Self.capsule(p.a)
            let b = try await Self.capsule(p.b)
            let http = HTTPClient(eventLoopGroupProvider: .singleton)
            let key = try #require(p.a.apiKey)
            // Eight foreground `sleep`s of team A, each holding a call open (`sleeps` is their answers' statuses).
            let sleeps = Task {
                try await withThrowingTaskGroup(of: UInt.self) { group in
                    for _ in 0..<8 {
                        group.addTask {
                            var request = HTTPClientRequest(url: "http://127.0.0.1:\(p.port)/v1/capsules/\(a)/exec")
                            request.method = .POST
                            request.headers.add(name: "X-API-Key", value: key)
                            request.headers.add(name: "Content-Type", value: "application/json")
                            request.body = .bytes(ByteBuffer(string: #"{"cmd":"/bin/sleep","args":["\#(Self.marker)"],"timeout_sec":150}"#))
                            return try await http.execute(request, timeout: .seconds(200)).status.code
                        }
                    }
                    var codes: [UInt] = []
                    for try await code in group { codes.append(code) }
                    return codes
                }
            }
            do {
                // All eight run (seen through the agent itself: any call of team A's would take a place).
                try await MultiHostTests.eventually("eight sleeps running", timeout: .seconds(30)) {
                    try await Self.sleepers(p.agent, a) == 8
                }
                // A ninth call of team A is refused at once: 429, Retry-After, the envelope.
                let ninth = try await CapsuleAPITests.exec(p.a, a, "true")
                #expect(ninth.status == .tooManyRequests)
                #expect(ninth.errorCode == "too_many_requests")
                #expect(ninth.headers[.retryAfter] != nil)
                // Team B: exec, process list, files, create, pause and destroy all answer while A's sleeps still run.
                #expect(try await CapsuleAPITests.exec(p.b, b, "echo b").status == .ok)
                #expect(try await p.b.get("/v1/capsules/\(b)/processes").status == .ok)
                #expect(try await p.b.post("/v1/capsules/\(b)/files/list", json: ["path": "/tmp"]).status == .ok)
                let fresh = try await Self.capsule(p.b)
                #expect(try await p.b.post("/v1/capsules/\(fresh)/pause").status == .accepted)
                _ = try await CapsuleAPITests.wait(p.b, fresh, for: .paused)
                #expect(try await p.b.delete("/v1/capsules/\(fresh)").status == .accepted)
                _ = try await CapsuleAPITests.wait(p.b, fresh, for: .stopped)
                // The proof that B did not wait for A: A's eight calls are all still open.
                #expect(try await Self.sleepers(p.agent, a) == 8)
                #expect(try await CapsuleAPITests.exec(p.a, a, "true").status == .tooManyRequests)
            } catch {
                try? await Self.killSleepers(p.agent, a)
                _ = await sleeps.result
                try? await http.shutdown()
                throw error
            }
            try await Self.killSleepers(p.agent, a)
            #expect(try await sleeps.value.count == 8)
            try await http.shutdown()
            _ = try await p.a.delete("/v1/capsules/\(a)")
        }
    }

    /// A `sleep` duration no other process on this machine uses.
    static let marker = "123.4567"

    /// How many of team A's `sleep`s run in capsule `id`, asked of its agent directly.
    static func sleepers(_ agent: LocalAgent, _ id: String) async throws -> Int {
        var request = HTTPClientRequest(url: "\(agent.baseURL)/v1/capsules/\(id)/envd/processes")
        request.headers.add(name: "Authorization", value: "Bearer \(agent.token)")
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 16 << 20)
        let list = try WireCoding.makeDecoder().decode(ProcessListResponse.self, from: Data(buffer: body))
        return list.processes.filter { $0.args == [marker] }.count
    }

    /// Ends team A's `sleep`s (through the agent: the envd of an `EnvdBackedRuntime` capsule sees the host's processes).
    static func killSleepers(_ agent: LocalAgent, _ id: String) async throws {
        var list = HTTPClientRequest(url: "\(agent.baseURL)/v1/capsules/\(id)/envd/processes")
        list.headers.add(name: "Authorization", value: "Bearer \(agent.token)")
        let body = try await HTTPClient.shared.execute(list, timeout: .seconds(10)).body.collect(upTo: 16 << 20)
        for process in try WireCoding.makeDecoder().decode(ProcessListResponse.self, from: Data(buffer: body)).processes
        where process.args == [marker] {
            var kill = HTTPClientRequest(url: "\(agent.baseURL)/v1/capsules/\(id)/envd/processes/\(process.pid)")
            kill.method = .DELETE
            kill.headers.add(name: "Authorization", value: "Bearer \(agent.token)")
            _ = try await HTTPClient.shared.execute(kill, timeout: .seconds(10))
        }
    }

    @Test("file-before-path uploads spool a bounded amount; path-first streams as before")
    func uploadSpoolIsBounded() async throws {
        try await Self.withPlatform(configure: { $0.edge.uploadSpoolLimit = 64 << 10 }) { p in
            let id = try await Self.capsule(p.a)
            let file = ByteBuffer(repeating: UInt8(ascii: "x"), count: 200 << 10)
            let dir = "/tmp/wrenn-spool-\(UUID().uuidString.prefix(8))"
            defer { try? FileManager.default.removeItem(atPath: dir) }
            for (pathFirst, expected) in [(false, HTTPResponse.Status.contentTooLarge), (true, .noContent)] {
                let (body, boundary) = CapsuleAPITests.multipart(path: "\(dir)/f", file: file, pathFirst: pathFirst)
                let reply = try await p.a.send("/v1/capsules/\(id)/files/stream/write", .post, body: body,
                                               extraHeaders: [.contentType: "multipart/form-data; boundary=\(boundary)"])
                #expect(reply.status == expected, "path first: \(pathFirst)")
                if !pathFirst { #expect(reply.errorCode == "too_large") }
            }
        }
    }

    @Test("data-plane use and every admin access into a team's capsule are audited once per call or stream")
    func dataPlaneIsAudited() async throws {
        try await Self.withPlatform { p in
            let id = try await Self.capsule(p.b)
            _ = try await CapsuleAPITests.exec(p.b, id, "true")
            _ = try await p.b.post("/v1/capsules/\(id)/files/list", json: ["path": "/tmp"])
            _ = try await p.b.delete("/v1/capsules/\(id)/processes/999999")
            // The platform admin (alice, not a member of bob's team) looks into bob's capsule.
            #expect(try await p.alice.get("/v1/admin/capsules/\(id)").status == .ok)
            #expect(try await p.alice.post("/v1/admin/capsules/\(id)/exec", json: ["cmd": "true"]).status == .ok)
            let rows = try await p.cp.assembly.database.read { sql in
                try await sql.raw("SELECT action, metadata FROM audit_logs WHERE team_id = \(bind: p.bTeam) AND resource_id = \(bind: id)")
                    .all()
            }
            let entries = try rows.map { (try $0.decode(column: "action", as: String.self), try $0.decode(column: "metadata", as: String.self)) }
            let actions = entries.map(\.0)
            #expect(actions.filter { $0 == "exec" }.count == 2)
            #expect(actions.contains("files.list"))
            #expect(actions.contains("process.kill"))
            let viaAdmin = entries.filter { $0.1.contains("\"via\":\"admin\"") }.map(\.0)
            #expect(Set(viaAdmin) == ["admin.view", "exec"], "\(entries)")
        }
    }
}
