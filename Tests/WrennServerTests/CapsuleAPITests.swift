import AsyncHTTPClient
import Crypto
import Foundation
import HTTPTypes
import HummingbirdTesting
import HummingbirdWSClient
import Logging
import NIOCore
import NIOFoundationCompat
import Testing
import WrennServer
import WrennTestSupport
import WrennWire

/// The public capsule API end to end: a real control plane, a real host agent, and a real envd per capsule (the
/// agent's runtime here is `EnvdBackedRuntime`, which runs envd on loopback instead of booting a VM; the QEMU path is
/// covered by the agent's own integration tests).
@Suite("capsules through the control plane, agent and envd", .serialized)
struct CapsuleAPITests {
    /// A control plane wired to a fresh agent, and an API key of a signed-in user's team.
    static func withPlatform(_ backend: TestBackend = .sqlite,
                             _ body: @Sendable @escaping (TestControlPlane, LocalAgent, Browser) async throws -> Void) async throws {
        let agent = try await LocalAgent.start()
        do {
            try await TestControlPlane.run(backend, configure: { $0.agent = .init(url: agent.baseURL, token: agent.token) }) { cp in
                let user = try await cp.signedInUser(email: "capsules@e2e.test")
                let key = try #require(try await user.post("/v1/api-keys", json: ["name": "sdk"]).decode(APIKeyResponse.self).key)
                let sdk = cp.browser()
                sdk.apiKey = key
                try await body(cp, agent, sdk)
            }
        } catch {
            await agent.stop()
            throw error
        }
        await agent.stop()
    }

    /// Polls the capsule until it reaches `status` (or fails on an unexpected terminal state).
    static func wait(_ sdk: Browser, _ id: String, for status: CapsuleStatus, timeout: Duration = .seconds(30)) async throws -> Capsule {
        let deadline = ContinuousClock.now + timeout
        while true {
            let capsule = try await sdk.get("/v1/capsules/\(id)").decode(Capsule.self)
            if capsule.status == status { return capsule }
            if capsule.status == .error && status != .error { throw TestBackendError("capsule \(id) went to error") }
            if ContinuousClock.now > deadline { throw TestBackendError("capsule \(id) stayed \(capsule.status), wanted \(status)") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    static func exec(_ sdk: Browser, _ id: String, _ script: String, extra: [String: Any] = [:]) async throws -> TestResponse {
        var json: [String: Any] = ["cmd": "/bin/sh", "args": ["-c", script]]
        json.merge(extra) { _, new in new }
        return try await sdk.post("/v1/capsules/\(id)/exec", json: json)
    }

    @Test(arguments: TestBackend.available)
    func lifecycleExecPauseResumeDestroy(_ backend: TestBackend) async throws {
        try await Self.withPlatform(backend) { cp, _, sdk in
            let created = try await sdk.post("/v1/capsules", json: ["timeout_sec": 30])
            #expect(created.status == .accepted)
            let capsule = try created.decode(Capsule.self)
            #expect(capsule.status == .starting)
            #expect(capsule.template == "minimal")
            #expect(capsule.vcpus == 1 && capsule.memoryMB == 512 && capsule.diskSizeMB == 5120)
            #expect(capsule.timeoutSec == 60) // positive values under 60 clamp to 60
            #expect(capsule.id.hasPrefix("cl-"))
            let running = try await Self.wait(sdk, capsule.id, for: .running)
            #expect(running.startedAt != nil)
            #expect(running.metadata?["agent_version"] != nil)
            #expect(try await sdk.get("/v1/capsules").decode([Capsule].self).map(\.id) == [capsule.id])

            let echo = try await Self.exec(sdk, capsule.id, "echo hello $WHO; echo oops >&2; exit 3", extra: ["envs": ["WHO": "world"]])
            #expect(echo.status == .ok)
            let result = try echo.decode(ExecResponse.self)
            #expect(result.stdout == "hello world\n")
            #expect(result.stderr == "oops\n")
            #expect(result.exitCode == 3)

            // Background process: started, listed, killed by tag.
            let bg = try await Self.exec(sdk, capsule.id, "sleep 300", extra: ["background": true, "tag": "sleeper"])
            #expect(bg.status == .accepted)
            let processes = try await sdk.get("/v1/capsules/\(capsule.id)/processes").decode(ProcessListResponse.self)
            #expect(processes.processes.contains { $0.tag == "sleeper" })
            #expect(try await sdk.delete("/v1/capsules/\(capsule.id)/processes/sleeper").status == .noContent)
            // SIGKILL is asynchronous: once the process is gone (reaped), a second kill is 404.
            try await MultiHostTests.eventually("sleeper gone") {
                let list = try await sdk.get("/v1/capsules/\(capsule.id)/processes").decode(ProcessListResponse.self)
                return list.processes.allSatisfy { $0.tag != "sleeper" }
            }
            #expect(try await sdk.delete("/v1/capsules/\(capsule.id)/processes/sleeper").status == .notFound)

            #expect(try await sdk.post("/v1/capsules/\(capsule.id)/ping").status == .noContent)
            let metrics = try await sdk.get("/v1/capsules/\(capsule.id)/metrics?range=5m")
            #expect(metrics.status == .ok)
            #expect(try metrics.decode(CapsuleMetrics.self).sandboxID == capsule.id)
            #expect(try await sdk.get("/v1/capsules/\(capsule.id)/metrics?range=3d").status == .badRequest)
            #expect(try await sdk.post("/v1/capsules/\(capsule.id)/resume").status == .conflict) // not paused

            let pausing = try await sdk.post("/v1/capsules/\(capsule.id)/pause")
            #expect(pausing.status == .accepted)
            #expect(try pausing.decode(Capsule.self).status == .pausing)
            _ = try await Self.wait(sdk, capsule.id, for: .paused)
            let blocked = try await Self.exec(sdk, capsule.id, "true")
            #expect(blocked.status == .conflict)
            #expect(blocked.errorCode == "invalid_state")
            #expect(try await sdk.post("/v1/capsules/\(capsule.id)/ping").status == .conflict)
            #expect(try await sdk.post("/v1/capsules/\(capsule.id)/pause").status == .conflict)
            #expect(try await sdk.post("/v1/capsules/\(capsule.id)/resume").status == .accepted)
            _ = try await Self.wait(sdk, capsule.id, for: .running)
            #expect(try await Self.exec(sdk, capsule.id, "echo back").decode(ExecResponse.self).stdout == "back\n")

            #expect(try await sdk.delete("/v1/capsules/\(capsule.id)").status == .accepted)
            let stopped = try await Self.wait(sdk, capsule.id, for: .stopped)
            #expect(stopped.id == capsule.id) // a destroyed capsule stays readable
            #expect(try await sdk.get("/v1/capsules").decode([Capsule].self).isEmpty)
            #expect(try await sdk.delete("/v1/capsules/\(capsule.id)").status == .accepted) // idempotent
            #expect(try await Self.exec(sdk, capsule.id, "true").status == .conflict)
            #expect(try await sdk.get("/v1/capsules/\(capsule.id)/metrics").status == .notFound)

            // Every step left an audit entry and an event.
            let kinds = try await cp.assembly.database.read { sql in
                try await sql.raw("SELECT kind FROM events ORDER BY seq").all(decodingColumn: "kind", as: String.self)
            }
            #expect(kinds == ["capsule.create", "capsule.pause", "capsule.resume", "capsule.destroy"])
        }
    }

    /// A foreground exec that prints nothing for longer than 90 s still answers: the control plane's agent client
    /// has no read timeout (it used `HTTPClient.shared`, whose 90 s read timeout cut a build's `pip install` and any
    /// SDK `run(timeout=…)` over 90 s with 503). The caller here is a client without a read timeout either.
    @Test(.timeLimit(.minutes(5))) func silentForegroundExecLongerThan90Seconds() async throws {
        try await Self.withPlatform { cp, _, sdk in
            let id = try await sdk.post("/v1/capsules", json: [:]).decode(Capsule.self).id
            _ = try await Self.wait(sdk, id, for: .running)
            let port = try #require(cp.client.port)
            let caller = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(timeout: .init(connect: .seconds(5))))
            do {
                var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/capsules/\(id)/exec")
                request.method = .POST
                request.headers.add(name: "X-API-Key", value: try #require(sdk.apiKey))
                request.headers.add(name: "Content-Type", value: "application/json")
                request.body = .bytes(ByteBuffer(string: #"{"cmd":"/bin/sh","args":["-c","sleep 95; echo still here"],"timeout_sec":150}"#))
                let response = try await caller.execute(request, timeout: .seconds(200))
                let body = try await response.body.collect(upTo: 1 << 20)
                #expect(response.status == .ok, "\(String(buffer: body))")
                let result = try WireCoding.makeDecoder().decode(ExecResponse.self, from: Data(buffer: body))
                #expect(result.stdout == "still here\n" && result.exitCode == 0)
            } catch {
                try await caller.shutdown()
                throw error
            }
            try await caller.shutdown()
        }
    }

    @Test func createValidationAndTenantIsolation() async throws {
        try await Self.withPlatform { cp, _, sdk in
            #expect(try await sdk.post("/v1/capsules", json: ["template": "nope"]).status == .notFound)
            #expect(try await sdk.post("/v1/capsules", json: ["template": "../etc"]).status == .badRequest)
            #expect(try await sdk.post("/v1/capsules", json: ["vcpus": 0]).status == .badRequest)
            #expect(try await sdk.post("/v1/capsules", json: ["memory_mb": 1]).status == .badRequest)
            #expect(try await sdk.post("/v1/capsules", json: ["timeout_sec": -1]).status == .badRequest)
            #expect(try await sdk.post("/v1/capsules", json: ["vcpus": "two"]).status == .badRequest)
            #expect(try await cp.browser().post("/v1/capsules", json: [:]).status == .unauthorized)

            let mine = try await sdk.post("/v1/capsules", json: [:]).decode(Capsule.self)
            _ = try await Self.wait(sdk, mine.id, for: .running)
            let other = try await cp.signedInUser(email: "other@e2e.test")
            let otherKey = try #require(try await other.post("/v1/api-keys", json: [:]).decode(APIKeyResponse.self).key)
            let stranger = cp.browser()
            stranger.apiKey = otherKey
            #expect(try await stranger.get("/v1/capsules/\(mine.id)").status == .notFound)
            #expect(try await Self.exec(stranger, mine.id, "true").status == .notFound)
            #expect(try await stranger.delete("/v1/capsules/\(mine.id)").status == .notFound)
            #expect(try await stranger.post("/v1/capsules/\(mine.id)/pause").status == .notFound)
            #expect(try await stranger.post("/v1/snapshots", json: ["sandbox_id": mine.id]).status == .notFound)
            #expect(try await stranger.get("/v1/capsules").decode([Capsule].self).isEmpty)
            #expect(try await sdk.get("/v1/capsules/cl-doesnotexist").status == .notFound)
            // Cookie sessions work too (with CSRF on the POST).
            #expect(try await other.get("/v1/capsules").status == .ok)
            _ = try await sdk.delete("/v1/capsules/\(mine.id)")
        }
    }

    @Test func filesUploadDownloadListMkdirRemove() async throws {
        try await Self.withPlatform { _, _, sdk in
            let capsule = try await sdk.post("/v1/capsules", json: [:]).decode(Capsule.self)
            _ = try await Self.wait(sdk, capsule.id, for: .running)
            let dir = NSTemporaryDirectory() + "wrenn-e2e-" + UUID().uuidString.prefix(8)
            // Multipart upload with the path first (SDK streaming form) and with the file first (spooled).
            for (index, pathFirst) in [true, false].enumerated() {
                let content = ByteBuffer(bytes: (0..<(300_000 + index)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
                let target = "\(dir)/nested/\(index).bin"
                let (body, boundary) = Self.multipart(path: target, file: content, pathFirst: pathFirst)
                let upload = try await sdk.send("/v1/capsules/\(capsule.id)/files/write", .post, body: body,
                                                extraHeaders: [.contentType: "multipart/form-data; boundary=\(boundary)"])
                #expect(upload.status == .noContent, "upload \(index): \(upload.errorMessage ?? "")")
                let read = try await sdk.post("/v1/capsules/\(capsule.id)/files/read", json: ["path": target])
                #expect(read.status == .ok)
                #expect(read.body == content)
                let streamed = try await sdk.post("/v1/capsules/\(capsule.id)/files/stream/read", json: ["path": target])
                #expect(streamed.body == content)
            }
            let listing = try await sdk.post("/v1/capsules/\(capsule.id)/files/list", json: ["path": "\(dir)/nested", "depth": 1])
            #expect(listing.status == .ok)
            #expect(try listing.decode(ListDirResponse.self).entries.map(\.name).sorted() == ["0.bin", "1.bin"])
            #expect(try await sdk.post("/v1/capsules/\(capsule.id)/files/mkdir", json: ["path": "\(dir)/made"]).status == .ok)
            let again = try await sdk.post("/v1/capsules/\(capsule.id)/files/mkdir", json: ["path": "\(dir)/made"])
            #expect(again.status == .conflict)
            #expect(again.errorCode == "already_exists")
            #expect(try await sdk.post("/v1/capsules/\(capsule.id)/files/remove", json: ["path": dir]).status == .noContent)
            #expect(try await sdk.post("/v1/capsules/\(capsule.id)/files/read", json: ["path": "\(dir)/nested/0.bin"]).status == .notFound)
            // Bad multipart bodies are 400s.
            let bad = try await sdk.send("/v1/capsules/\(capsule.id)/files/write", .post, body: ByteBuffer(string: "nope"),
                                         extraHeaders: [.contentType: "multipart/form-data; boundary=x"])
            #expect(bad.status == .badRequest)
            let noPath = Self.multipart(path: nil, file: ByteBuffer(string: "x"), pathFirst: true)
            #expect(try await sdk.send("/v1/capsules/\(capsule.id)/files/write", .post, body: noPath.0,
                                       extraHeaders: [.contentType: "multipart/form-data; boundary=\(noPath.1)"]).status == .badRequest)
            _ = try await sdk.delete("/v1/capsules/\(capsule.id)")
        }
    }

    @Test func snapshotsCreateListOverwriteDelete() async throws {
        try await Self.withPlatform { _, _, sdk in
            let capsule = try await sdk.post("/v1/capsules", json: [:]).decode(Capsule.self)
            _ = try await Self.wait(sdk, capsule.id, for: .running)
            let made = try await sdk.post("/v1/snapshots", json: ["sandbox_id": capsule.id, "name": "my-snap"])
            #expect(made.status == .created)
            let template = try made.decode(Template.self)
            #expect(template.name == "my-snap" && template.type == "snapshot" && !template.platform)
            #expect(try await Self.wait(sdk, capsule.id, for: .running).status == .running) // it keeps running
            let dup = try await sdk.post("/v1/snapshots", json: ["sandbox_id": capsule.id, "name": "my-snap"])
            #expect(dup.status == .conflict)
            #expect(try await sdk.post("/v1/snapshots?overwrite=true", json: ["sandbox_id": capsule.id, "name": "my-snap"]).status == .created)
            #expect(try await sdk.post("/v1/snapshots", json: ["sandbox_id": capsule.id, "name": "minimal"]).errorCode == "name_reserved")
            let auto = try await sdk.post("/v1/snapshots", json: ["sandbox_id": capsule.id]).decode(Template.self)
            #expect(auto.name.hasPrefix("template-"))
            let all = try await sdk.get("/v1/snapshots").decode([Template].self)
            #expect(Set(all.map(\.name)) == ["minimal", "my-snap", auto.name])
            #expect(try await sdk.get("/v1/snapshots?type=base").decode([Template].self).map(\.name) == ["minimal"])
            #expect(try await sdk.get("/v1/snapshots?type=weird").status == .badRequest)
            // A capsule from the snapshot.
            let child = try await sdk.post("/v1/capsules", json: ["template": "my-snap"]).decode(Capsule.self)
            #expect(try await Self.wait(sdk, child.id, for: .running).template == "my-snap")
            #expect(try await sdk.delete("/v1/snapshots/minimal").status == .forbidden)
            #expect(try await sdk.delete("/v1/snapshots/my-snap").status == .noContent)
            #expect(try await sdk.delete("/v1/snapshots/my-snap").status == .notFound)
            _ = try await sdk.delete("/v1/capsules/\(child.id)")
            _ = try await sdk.delete("/v1/capsules/\(capsule.id)")
        }
    }

    @Test func eventStreamDeliversAndReplays() async throws {
        try await Self.withPlatform { cp, _, sdk in
            let capsule = try await sdk.post("/v1/capsules", json: [:]).decode(Capsule.self)
            _ = try await Self.wait(sdk, capsule.id, for: .running)
            // Replay from the start of the log: the create event is there.
            let stream = try await Self.readSSE(cp: cp, apiKey: try #require(sdk.apiKey), lastEventID: "0", until: "capsule.create")
            #expect(stream.first?.event == "connected")
            let create = try #require(stream.first { $0.event == "capsule.create" })
            #expect(create.data.contains(capsule.id))
            #expect(create.id != nil)
            // Without an API key: 401.
            #expect(try await cp.browser().get("/v1/events/stream").status == .unauthorized)
            _ = try await sdk.delete("/v1/capsules/\(capsule.id)")
        }
    }

    @Test func execStreamOverWebSocket() async throws {
        try await Self.withPlatform { cp, _, sdk in
            let capsule = try await sdk.post("/v1/capsules", json: [:]).decode(Capsule.self)
            _ = try await Self.wait(sdk, capsule.id, for: .running)
            let port = try #require(cp.client.port)
            var headers = HTTPFields()
            headers[HTTPField.Name("X-API-Key")!] = try #require(sdk.apiKey)
            let frames = Frames()
            var logger = Logger(label: "test.ws")
            logger.logLevel = .critical
            _ = try await WebSocketClient.connect(url: "ws://127.0.0.1:\(port)/v1/capsules/\(capsule.id)/exec/stream",
                                                  configuration: .init(additionalHeaders: headers), logger: logger) { inbound, outbound, _ in
                try await outbound.write(.text(#"{"type":"start","cmd":"/bin/sh","args":["-c","echo streamed"]}"#))
                for try await message in inbound.messages(maxSize: 1 << 20) {
                    guard case .text(let text) = message else { continue }
                    frames.append(text)
                    if text.contains("\"exit\"") { break }
                }
            }
            let all = frames.all.joined()
            #expect(all.contains("streamed"))
            #expect(all.contains("\"exit\""))
            // Not running → no upgrade; the plain route answers with the envelope.
            _ = try await sdk.delete("/v1/capsules/\(capsule.id)")
            _ = try await Self.wait(sdk, capsule.id, for: .stopped)
            let refused = try await sdk.get("/v1/capsules/\(capsule.id)/exec/stream")
            #expect(refused.status == .conflict)
            // Over a WebSocket: the same 409 and envelope, before any upgrade.
            let refusal = try RawWebSocket.handshake(port: port, host: "localhost", path: "/v1/capsules/\(capsule.id)/exec/stream",
                                                     headers: ["X-API-Key": try #require(sdk.apiKey)])
            #expect(refusal.status == 409 && refusal.errorCode == "invalid_state")
            #expect(refusal.socket == nil)
        }
    }

    @Test func agentCallbackAppliesAutoPause() async throws {
        try await Self.withPlatform { cp, agent, sdk in
            let capsule = try await sdk.post("/v1/capsules", json: [:]).decode(Capsule.self)
            _ = try await Self.wait(sdk, capsule.id, for: .running)
            let event = AgentCapsuleEvent(kind: "auto_paused", capsuleID: capsule.id, status: .paused, reason: nil, at: Date())
            let body = ByteBuffer(data: try WireCoding.makeEncoder().encode(event))
            let wrong = try await cp.client.execute(uri: "/v1/hosts/sandbox-events", method: .post,
                                                    headers: [.authorization: "Bearer nope", .contentType: "application/json"], body: body)
            #expect(wrong.status == .unauthorized)
            let ok = try await cp.client.execute(uri: "/v1/hosts/sandbox-events", method: .post,
                                                 headers: [.authorization: "Bearer \(agent.token)", .contentType: "application/json"], body: body)
            #expect(ok.status == .noContent)
            #expect(try await sdk.get("/v1/capsules/\(capsule.id)").decode(Capsule.self).status == .paused)
            let logged = try await cp.assembly.database.read { sql in
                try await sql.raw("SELECT payload FROM events WHERE kind = 'capsule.state.changed'").first(decodingColumn: "payload", as: String.self)
            }
            #expect(logged?.contains("ttl_expired") == true)
            _ = try await sdk.delete("/v1/capsules/\(capsule.id)")
        }
    }

    @Test func withoutAnAgentCreateIs503() async throws {
        try await TestControlPlane.run(.sqlite) { cp in
            let user = try await cp.signedInUser(email: "noagent@e2e.test")
            let r = try await user.post("/v1/capsules", json: [:])
            #expect(r.status == .serviceUnavailable)
            #expect(r.errorCode == "no_hosts_available")
        }
    }

    // MARK: Helpers

    final class Frames: @unchecked Sendable {
        private let lock = NSLock()
        private var frames: [String] = []
        func append(_ s: String) { lock.withLock { frames.append(s) } }
        var all: [String] { lock.withLock { frames } }
    }

    struct SSEMessage { var id: String?; var event: String; var data: String }

    /// Reads the SSE stream at `path` over a real connection until an event named `until` arrives (10 s at most),
    /// authenticated by `apiKey` or by a `cookie` header.
    static func readSSE(cp: TestControlPlane, apiKey: String?, cookie: String? = nil, path: String = "/v1/events/stream",
                        lastEventID: String?, until: String) async throws -> [SSEMessage] {
        let port = try #require(cp.client.port)
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        if let apiKey { request.headers.add(name: "X-API-Key", value: apiKey) }
        if let cookie { request.headers.add(name: "Cookie", value: cookie) }
        if let lastEventID { request.headers.add(name: "Last-Event-ID", value: lastEventID) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        #expect(response.headers.first(name: "content-type") == "text/event-stream")
        var text = ""
        var messages: [SSEMessage] = []
        for try await chunk in response.body {
            text += String(buffer: chunk)
            while let range = text.range(of: "\n\n") {
                let block = String(text[..<range.lowerBound])
                text.removeSubrange(..<range.upperBound)
                var message = SSEMessage(id: nil, event: "", data: "")
                for line in block.split(separator: "\n") {
                    if line.hasPrefix("id: ") { message.id = String(line.dropFirst(4)) }
                    if line.hasPrefix("event: ") { message.event = String(line.dropFirst(7)) }
                    if line.hasPrefix("data: ") { message.data = String(line.dropFirst(6)) }
                }
                if !message.event.isEmpty { messages.append(message) }
                if message.event == until { return messages }
            }
        }
        return messages
    }

    /// A multipart body with `path` and `file` parts in the given order (`path` nil leaves it out).
    static func multipart(path: String?, file: ByteBuffer, pathFirst: Bool) -> (ByteBuffer, String) {
        let boundary = "wrenn-" + UUID().uuidString
        var pathPart = ByteBuffer()
        if let path {
            pathPart.writeString("--\(boundary)\r\nContent-Disposition: form-data; name=\"path\"\r\n\r\n\(path)\r\n")
        }
        var filePart = ByteBuffer(string: "--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"upload\"\r\n"
                                  + "Content-Type: application/octet-stream\r\n\r\n")
        var content = file
        filePart.writeBuffer(&content)
        filePart.writeString("\r\n")
        var body = ByteBuffer()
        if pathFirst { body.writeImmutableBuffer(pathPart); body.writeImmutableBuffer(filePart) } else {
            body.writeImmutableBuffer(filePart); body.writeImmutableBuffer(pathPart)
        }
        body.writeString("--\(boundary)--\r\n")
        return (body, boundary)
    }
}
