import AsyncHTTPClient
import Crypto
import Foundation
import HTTPTypes
import HummingbirdWSClient
import NIOCore
import NIOHTTP1
import Synchronization
import Testing
import WrennImage
import WrennWire
@testable import WrennAgent
import WrennHTTP
import WrennTestSupport

/// The agent API over real HTTP, with a `Runtime` whose capsules are real envd servers on loopback (no QEMU).
@Suite("Agent API")
struct AgentAPITests {
    static func id(_ prefix: String) -> String { "cl-\(prefix)-\(UUID().uuidString.prefix(8).lowercased())" }

    @Test("every route needs the agent's bearer token: missing, wrong or non-bearer → 401 envelope")
    func authentication() async throws {
        let agent = try await AgentHarness.start()
        defer { Task { await agent.shutdown() } }
        let capsule = Self.id("auth")
        #expect(try await agent.create(capsule).status == 201)
        let probes: [(HTTPMethod, String)] = [
            (.GET, "/v1/capsules"), (.GET, "/v1/host"), (.POST, "/v1/capsules"), (.DELETE, "/v1/capsules/\(capsule)"),
            (.GET, "/v1/capsules/\(capsule)/envd/health"), (.POST, "/v1/capsules/\(capsule)/envd/exec"), (.GET, "/v1/nope"),
        ]
        for (method, path) in probes {
            for authorization: String? in [nil, "Bearer wrong-token", "Basic \(agent.token)", "Bearer \(agent.token)x", "Bearer "] {
                let reply = try await agent.request(method, path, authorization: .some(authorization))
                #expect(reply.status == 401, "\(method) \(path) with \(authorization ?? "nothing") → \(reply.status)")
                #expect(reply.errorCode == "unauthorized")
            }
        }
        // Nothing happened to the capsule.
        #expect(try await agent.request(.GET, "/v1/capsules/\(capsule)").decode(AgentCapsule.self).status == .running)
        #expect(ConstantTime.equal(Array("abc".utf8), Array("abc".utf8)))
        #expect(!ConstantTime.equal(Array("abd".utf8), Array("abc".utf8)))
        #expect(!ConstantTime.equal(Array("ab".utf8), Array("abc".utf8)))
        #expect(!ConstantTime.equal([], []))
    }

    @Test("create/list/get/pause/resume/ping/destroy follow the state rules with the contract's error codes")
    func lifecycleStateRules() async throws {
        let agent = try await AgentHarness.start()
        defer { Task { await agent.shutdown() } }
        let id = Self.id("life")

        let created = try await agent.create(id, timeoutSec: 10)
        #expect(created.status == 201, "\(created.text)")
        let capsule = try created.decode(AgentCapsule.self)
        #expect(capsule.status == .running)
        #expect(capsule.template == "minimal")
        #expect(capsule.timeoutSec == 60, "timeouts under 60 s clamp to 60")
        #expect(capsule.memoryMB == 512 && capsule.vcpus == 1 && capsule.diskSizeMB == 1024)
        #expect(capsule.metadata["envd_version"] == "0.2.0")
        #expect(capsule.metadata["agent_version"] == AgentServerConfiguration.agentVersion)
        #expect(capsule.error == nil)

        // Input errors.
        #expect(try await agent.create(id).errorCode == "conflict")
        #expect(try await agent.create(Self.id("tmpl"), template: "missing").errorCode == "not_found")
        #expect(try await agent.create("Bad Id").errorCode == "invalid_request")
        let malformed = try await agent.request(.POST, "/v1/capsules", rawBody: ByteBuffer(string: "{\"id\":1}"))
        #expect(malformed.status == 400 && malformed.errorCode == "invalid_request")
        let negative = try await agent.request(.POST, "/v1/capsules", json: AgentCreateCapsule(
            id: Self.id("neg"), template: "minimal", vcpus: 0, memoryMB: 512, diskSizeMB: 0, timeoutSec: 0))
        #expect(negative.status == 400 && negative.errorCode == "invalid_request")
        #expect(try await agent.request(.GET, "/v1/nope").errorCode == "not_found")

        // Reads.
        let list = try await agent.request(.GET, "/v1/capsules").decode(AgentCapsuleList.self)
        #expect(list.capsules.map(\.id) == [id])
        #expect(try await agent.request(.GET, "/v1/capsules/\(id)").decode(AgentCapsule.self) == capsule)
        let missing = try await agent.request(.GET, "/v1/capsules/cl-nope")
        #expect(missing.status == 404 && missing.errorCode == "not_found")
        for path in ["/pause", "/resume", "/ping", "/snapshot"] {
            let reply = try await agent.request(.POST, "/v1/capsules/cl-nope\(path)", json: AgentSnapshotRequest(name: "x"))
            #expect(reply.status == 404 && reply.errorCode == "not_found", "\(path): \(reply.text)")
        }
        let metrics = try await agent.request(.GET, "/v1/capsules/\(id)/metrics?range=5m")
        #expect(metrics.status == 200)
        #expect(try metrics.decode(AgentMetrics.self).range == "5m")
        #expect(try await agent.request(.GET, "/v1/capsules/\(id)/metrics?range=3d").errorCode == "invalid_request")
        #expect(try await agent.request(.GET, "/v1/capsules/cl-nope/metrics").errorCode == "not_found")
        let host = try await agent.request(.GET, "/v1/host").decode(AgentHostFacts.self)
        #expect(host.cpuCores > 0 && host.memoryMB > 0 && !host.arch.isEmpty)
        #expect(try await agent.request(.GET, "/v1/templates").status == 200)
        #expect(try await agent.request(.DELETE, "/v1/templates/nope").errorCode == "not_found")

        // Running: resume is refused, ping works.
        let resumeRunning = try await agent.request(.POST, "/v1/capsules/\(id)/resume")
        #expect(resumeRunning.status == 409 && resumeRunning.errorCode == "invalid_state")
        #expect(try await agent.request(.POST, "/v1/capsules/\(id)/ping").status == 204)

        // Paused: pause, ping and the envd proxy are refused.
        let paused = try await agent.request(.POST, "/v1/capsules/\(id)/pause")
        #expect(paused.status == 200)
        #expect(try paused.decode(AgentCapsule.self).status == .paused)
        for path in ["/pause", "/ping"] {
            let reply = try await agent.request(.POST, "/v1/capsules/\(id)\(path)")
            #expect(reply.status == 409 && reply.errorCode == "invalid_state", "\(path): \(reply.text)")
        }
        let proxied = try await agent.request(.POST, "/v1/capsules/\(id)/envd/exec", json: ExecRequest(cmd: "true"))
        #expect(proxied.status == 409 && proxied.errorCode == "invalid_state")
        // On a WebSocket path the refusal is the same status and envelope, before any upgrade.
        let upgrade = ["Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
                       "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="]
        let refused = try await GuestHTTP.request(host: "127.0.0.1", port: agent.port, method: "GET", path: "/v1/capsules/\(id)/envd/exec/stream",
                                                  headers: upgrade.merging(["Authorization": "Bearer \(agent.token)"]) { $1 })
        #expect(refused.status == 409)
        #expect(String(decoding: refused.body, as: UTF8.self).contains("\"code\":\"invalid_state\""))
        // Without the agent token there is no socket at all: 401 with the envelope.
        let unauthorizedUpgrade = try await GuestHTTP.request(
            host: "127.0.0.1", port: agent.port, method: "GET", path: "/v1/capsules/\(id)/envd/pty",
            headers: upgrade.merging(["Authorization": "Bearer nope"]) { $1 })
        #expect(unauthorizedUpgrade.status == 401)
        #expect(String(decoding: unauthorizedUpgrade.body, as: UTF8.self).contains("\"code\":\"unauthorized\""))
        let unknown = try await GuestHTTP.request(host: "127.0.0.1", port: agent.port, method: "GET", path: "/v1/capsules/cl-nope/envd/pty",
                                                  headers: upgrade.merging(["Authorization": "Bearer \(agent.token)"]) { $1 })
        #expect(unknown.status == 404)

        // Resumed: running again, proxy works.
        let resumed = try await agent.request(.POST, "/v1/capsules/\(id)/resume")
        #expect(try resumed.decode(AgentCapsule.self).status == .running)
        #expect(try await agent.request(.GET, "/v1/capsules/\(id)/envd/health").status == 200)

        // Destroy is idempotent; afterwards the capsule is gone.
        #expect(try await agent.request(.DELETE, "/v1/capsules/\(id)").status == 204)
        #expect(try await agent.request(.DELETE, "/v1/capsules/\(id)").status == 204)
        #expect(try await agent.request(.GET, "/v1/capsules/\(id)").errorCode == "not_found")
        #expect(try await agent.request(.GET, "/v1/capsules/\(id)/envd/health").errorCode == "not_found")
        #expect(try await agent.request(.GET, "/v1/capsules").decode(AgentCapsuleList.self).capsules.isEmpty)
    }

    @Test("the envd proxy runs a foreground exec with envd's token, passes queries, and envd's own errors through")
    func proxyForegroundExec() async throws {
        let agent = try await AgentHarness.start()
        defer { Task { await agent.shutdown() } }
        let id = Self.id("exec")
        #expect(try await agent.create(id).status == 201)

        let exec = try await agent.request(.POST, "/v1/capsules/\(id)/envd/exec", json: ExecRequest(
            cmd: "/bin/sh", args: ["-c", "echo hello from $WRENN_CAPSULE_ID; echo oops >&2; exit 3"]))
        #expect(exec.status == 200, "\(exec.text)")
        let result = try exec.decode(ExecResponse.self)
        #expect(result.stdout == "hello from \(id)\n")
        #expect(result.stderr == "oops\n")
        #expect(result.exitCode == 3)

        // A background process, then the process list through a query-carrying path.
        let background = try await agent.request(.POST, "/v1/capsules/\(id)/envd/exec", json: ExecRequest(
            cmd: "sleep", args: ["30"], background: true, tag: "sleeper"))
        #expect(background.status == 202)
        let list = try await agent.request(.GET, "/v1/capsules/\(id)/envd/processes").decode(ProcessListResponse.self)
        #expect(list.processes.contains { $0.tag == "sleeper" })
        let kill = try await agent.request(.DELETE, "/v1/capsules/\(id)/envd/processes/sleeper?signal=SIGTERM")
        #expect(kill.status == 204, "\(kill.text)")
        let badSignal = try await agent.request(.DELETE, "/v1/capsules/\(id)/envd/processes/sleeper?signal=SIGFOO")
        #expect(badSignal.status == 400, "query reached envd: \(badSignal.text)")

        // envd's error envelopes come back unchanged.
        let invalid = try await agent.request(.POST, "/v1/capsules/\(id)/envd/exec", rawBody: ByteBuffer(string: "{}"))
        #expect(invalid.status == 400 && invalid.errorCode == "invalid_request")
        let unknown = try await agent.request(.GET, "/v1/capsules/\(id)/envd/no/such/route")
        #expect(unknown.status == 404)
    }

    @Test("a 50 MiB file streams through the proxy both ways and comes back with the same SHA-256")
    func proxyStreamsLargeFile() async throws {
        let agent = try await AgentHarness.start()
        defer { Task { await agent.shutdown() } }
        let id = Self.id("file")
        #expect(try await agent.create(id).status == 201)
        let path = NSTemporaryDirectory() + "agent-proxy-\(UUID().uuidString).bin"
        defer { unlink(path) }
        let megabytes = 50
        let size = Int64(megabytes) << 20

        let sent = Digest()
        var upload = HTTPClientRequest(url: agent.baseURL + "/v1/capsules/\(id)/envd/files/write?path=\(path)")
        upload.method = .POST
        upload.headers.add(name: "Authorization", value: "Bearer \(agent.token)")
        upload.body = .stream(Blocks(count: megabytes, digest: sent), length: .known(size))
        let uploaded = try await HTTPClient.shared.execute(upload, timeout: .seconds(300))
        let answer = try await uploaded.body.collect(upTo: 1 << 20)
        #expect(uploaded.status.code == 200, "\(String(buffer: answer))")
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.size] as? Int).map(Int64.init) == size)

        // Chunked upload (no Content-Length) works as well.
        let chunkedPath = path + ".chunked"
        defer { unlink(chunkedPath) }
        var chunked = HTTPClientRequest(url: agent.baseURL + "/v1/capsules/\(id)/envd/files/write?path=\(chunkedPath)")
        chunked.method = .POST
        chunked.headers.add(name: "Authorization", value: "Bearer \(agent.token)")
        chunked.body = .stream(Blocks(count: 3, digest: Digest()), length: .unknown)
        let chunkedReply = try await HTTPClient.shared.execute(chunked, timeout: .seconds(60))
        _ = try await chunkedReply.body.collect(upTo: 1 << 20)
        #expect(chunkedReply.status.code == 200)
        #expect((try FileManager.default.attributesOfItem(atPath: chunkedPath)[.size] as? Int) == 3 << 20)

        var download = HTTPClientRequest(url: agent.baseURL + "/v1/capsules/\(id)/envd/files/read")
        download.method = .POST
        download.headers.add(name: "Authorization", value: "Bearer \(agent.token)")
        download.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(ReadFileRequest(path: path))))
        let response = try await HTTPClient.shared.execute(download, timeout: .seconds(300))
        #expect(response.status.code == 200)
        #expect(response.headers.first(name: "content-length") == "\(size)")
        var hasher = SHA256()
        var received: Int64 = 0
        var largestChunk = 0
        for try await chunk in response.body {
            hasher.update(data: chunk.readableBytesView)
            received += Int64(chunk.readableBytes)
            largestChunk = max(largestChunk, chunk.readableBytes)
        }
        #expect(received == size)
        #expect(hasher.finalize() == sent.value)
        #expect(largestChunk < 8 << 20, "the body arrived in pieces, not collected: largest chunk \(largestChunk)")
    }

    @Test("an exec stream WebSocket goes through the proxy: start frame out, start/stdout/stderr/exit frames back")
    func proxyWebSocketExecStream() async throws {
        let agent = try await AgentHarness.start()
        defer { Task { await agent.shutdown() } }
        let id = Self.id("ws")
        #expect(try await agent.create(id).status == 201)
        let frames = Mutex<[ProcessStreamFrame]>([])
        let close = try await agent.webSocket("/v1/capsules/\(id)/envd/exec/stream") { inbound, outbound in
            let start = ExecStreamClientFrame(type: .start, cmd: "/bin/sh", args: ["-c", "echo out; echo err >&2; exit 4"])
            try await outbound.write(.text(String(decoding: try JSONEncoder().encode(start), as: UTF8.self)))
            for try await message in inbound.messages(maxSize: 1 << 20) {
                guard case .text(let text) = message else { continue }
                let frame = try JSONDecoder().decode(ProcessStreamFrame.self, from: Data(text.utf8))
                frames.withLock { $0.append(frame) }
            }
        }
        let all = frames.withLock { $0 }
        #expect(all.first?.type == .start)
        #expect(all.filter { $0.type == .stdout }.compactMap(\.data).joined() == "out\n")
        #expect(all.filter { $0.type == .stderr }.compactMap(\.data).joined() == "err\n")
        #expect(all.last?.type == .exit)
        #expect(all.last?.exitCode == 4)
        #expect(close == nil || close?.closeCode == .normalClosure)

        // The client can stop a long process through the proxy; the socket closes afterwards.
        let stopped = Mutex<[ProcessStreamFrame]>([])
        _ = try await agent.webSocket("/v1/capsules/\(id)/envd/exec/stream") { inbound, outbound in
            let start = ExecStreamClientFrame(type: .start, cmd: "sleep", args: ["300"])
            try await outbound.write(.text(String(decoding: try JSONEncoder().encode(start), as: UTF8.self)))
            var iterator = inbound.messages(maxSize: 1 << 20).makeAsyncIterator()
            while let message = try await iterator.next() {
                guard case .text(let text) = message else { continue }
                let frame = try JSONDecoder().decode(ProcessStreamFrame.self, from: Data(text.utf8))
                stopped.withLock { $0.append(frame) }
                if frame.type == .start {
                    try await outbound.write(.text(String(decoding: try JSONEncoder().encode(ExecStreamClientFrame(type: .stop)), as: UTF8.self)))
                }
            }
        }
        #expect(stopped.withLock { $0.last?.type } == .exit)
        #expect(stopped.withLock { $0.last?.signal } == "SIGKILL")
    }

    @Test("a PTY session WebSocket goes through the proxy: base64 input in, output and exit out")
    func proxyPTY() async throws {
        let agent = try await AgentHarness.start()
        defer { Task { await agent.shutdown() } }
        let id = Self.id("pty")
        #expect(try await agent.create(id).status == 201)
        let output = Mutex<(text: String, exit: Int32?, started: Bool)>(("", nil, false))
        _ = try await agent.webSocket("/v1/capsules/\(id)/envd/pty") { inbound, outbound in
            func send(_ frame: PTYClientFrame) async throws {
                try await outbound.write(.text(String(decoding: try JSONEncoder().encode(frame), as: UTF8.self)))
            }
            try await send(PTYClientFrame(type: .start, cmd: "/bin/sh", cols: 80, rows: 24))
            for try await message in inbound.messages(maxSize: 1 << 20) {
                guard case .text(let text) = message else { continue }
                let frame = try JSONDecoder().decode(PTYServerFrame.self, from: Data(text.utf8))
                switch frame.type {
                case .started:
                    output.withLock { $0.started = true }
                    try await send(PTYClientFrame(type: .input, data: Data("echo pty-$((6*7))\nexit 5\n".utf8).base64EncodedString()))
                case .output:
                    let bytes = Data(base64Encoded: frame.data ?? "") ?? Data()
                    output.withLock { $0.text += String(decoding: bytes, as: UTF8.self) }
                case .exit:
                    output.withLock { $0.exit = frame.exitCode }
                    return
                default: break
                }
            }
        }
        let result = output.withLock { $0 }
        #expect(result.started)
        #expect(result.text.contains("pty-42"), "\(result.text)")
        #expect(result.exit == 5)
    }

    @Test("TTL: an idle capsule is auto-paused and the control plane is told (with retries); activity and in-flight requests keep it running")
    func idleTimeoutAutoPauses() async throws {
        let cpToken = "cp-token-\(UUID().uuidString)"
        let sink = try await EventSink.start(token: cpToken, failFirst: 2)
        defer { sink.stop() }
        let agent = try await AgentHarness.start { config in
            config.minimumIdleTimeout = .seconds(1)
            config.reaperInterval = .milliseconds(100)
            config.controlPlaneURL = sink.url + "/"
            config.controlPlaneToken = cpToken
            config.eventRetryDelay = .milliseconds(100)
        }
        defer { Task { await agent.shutdown() } }
        let idle = Self.id("idle"), pinged = Self.id("ping"), busy = Self.id("busy"), forever = Self.id("never")
        // Timeouts leave seconds of slack: the full suite runs this beside QEMU guests that load both cores, and a
        // capsule whose timer ran out before the test reached it would fail for the wrong reason.
        // A 5 s foreground exec on `busy` (timeout 3 s), started right after its create, must finish: in-flight
        // requests hold the capsule.
        #expect(try await agent.create(busy, timeoutSec: 3).status == 201)
        async let longExec = agent.request(.POST, "/v1/capsules/\(busy)/envd/exec", json: ExecRequest(cmd: "sleep", args: ["5"]))
        #expect(try await agent.create(pinged, timeoutSec: 4).status == 201)
        #expect(try await agent.create(idle, timeoutSec: 1).status == 201)
        #expect(try await agent.create(forever, timeoutSec: 0).status == 201)
        // `pinged` (timeout 4 s) gets a ping every 500 ms for 6 s.
        for _ in 0..<12 {
            #expect(try await agent.request(.POST, "/v1/capsules/\(pinged)/ping").status == 204)
            try await Task.sleep(for: .milliseconds(500))
        }
        let execReply = try await longExec
        #expect(execReply.status == 200, "exec was interrupted: \(execReply.text)")
        #expect(try await Self.status(agent, pinged) == .running)

        // `idle` was paused long ago; the event arrives after two refused deliveries.
        let deadline = ContinuousClock.now + .seconds(30)
        while !sink.events.contains(where: { $0.capsuleID == idle }) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(try await Self.status(agent, idle) == .paused)
        let event = try #require(sink.events.first { $0.capsuleID == idle })
        #expect(event.kind == "auto_paused")
        #expect(event.status == .paused)
        #expect(sink.attempts >= 3)
        #expect(sink.badAuth == 0)

        // `busy` is paused after its exec ended; `pinged` once pings stop; `forever` never.
        while (sink.events.filter { [busy, pinged].contains($0.capsuleID) }.count < 2) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(try await Self.status(agent, busy) == .paused)
        #expect(try await Self.status(agent, pinged) == .paused)
        #expect(try await Self.status(agent, forever) == .running)
        #expect(!sink.events.contains { $0.capsuleID == forever })
        #expect(Set(sink.events.map(\.capsuleID)).count == sink.events.count, "one event per auto-pause")

        // Resume restarts the idle clock; the capsule is paused again later, and reported again.
        #expect(try await agent.request(.POST, "/v1/capsules/\(idle)/resume").status == 200)
        #expect(try await Self.status(agent, idle) == .running)
        while sink.events.filter({ $0.capsuleID == idle }).count < 2 && ContinuousClock.now < deadline + .seconds(10) {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(sink.events.filter { $0.capsuleID == idle }.count == 2)
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: agent.dataDirectory + "/agent/events")) ?? []).isEmpty, "spool drained")
    }

    @Test("crash watcher: a capsule whose VMM process died is reported once as error and refuses the proxy")
    func crashIsReported() async throws {
        let cpToken = "cp-token-\(UUID().uuidString)"
        let sink = try await EventSink.start(token: cpToken, failFirst: 0)
        defer { sink.stop() }
        let runtime = EnvdBackedRuntime()
        let agent = try await AgentHarness.start(runtime: runtime) { config in
            config.reaperInterval = .milliseconds(100)
            config.controlPlaneURL = sink.url
            config.controlPlaneToken = cpToken
        }
        defer { Task { await agent.shutdown() } }
        let id = Self.id("crash")
        #expect(try await agent.create(id).status == 201)
        let devNull = open("/dev/null", O_RDWR)
        defer { close(devNull) }
        let vmm = try Command("sleep", ["600"]).spawn(stdin: devNull, stdout: devNull, stderr: devNull)
        await runtime.setPID(id, vmm)
        try await Task.sleep(for: .milliseconds(500))
        #expect(try await Self.status(agent, id) == .running)
        #expect(sink.events.isEmpty)

        kill(vmm, SIGKILL)
        _ = Command.waitStatus(vmm)
        let deadline = ContinuousClock.now + .seconds(10)
        while sink.events.isEmpty && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        let event = try #require(sink.events.first)
        #expect(event.kind == "error" && event.capsuleID == id && event.status == .error)
        #expect(event.reason?.contains("exited") == true)
        let capsule = try await agent.request(.GET, "/v1/capsules/\(id)").decode(AgentCapsule.self)
        #expect(capsule.status == .error && capsule.error != nil)
        #expect(try await agent.request(.POST, "/v1/capsules/\(id)/envd/exec", json: ExecRequest(cmd: "true")).errorCode == "invalid_state")
        #expect(try await agent.request(.POST, "/v1/capsules/\(id)/pause").errorCode == "invalid_state")
        try await Task.sleep(for: .milliseconds(500))
        #expect(sink.events.count == 1, "reported once")
        #expect(try await agent.request(.DELETE, "/v1/capsules/\(id)").status == 204)
    }

    @Test("restart: a new agent over the same runtime and data directory re-adopts capsules with their timeouts")
    func restartReadopts() async throws {
        let runtime = EnvdBackedRuntime()
        let directory = NSTemporaryDirectory() + "wrenn-agent-restart-" + UUID().uuidString.prefix(8).lowercased()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try await AgentHarness.start(runtime: runtime, dataDirectory: directory)
        let id = Self.id("keep")
        let created = try await first.create(id, template: "minimal", timeoutSec: 600).decode(AgentCapsule.self)
        #expect(try await first.request(.POST, "/v1/capsules/\(id)/envd/exec", json: ExecRequest(cmd: "true")).status == 200)
        let orphan = Self.id("orphan")
        #expect(try await first.create(orphan, timeoutSec: 120).status == 201)
        #expect(await first.stop(), "graceful shutdown ends the agent by itself")
        // A capsule whose agent record is lost is still served (no timeout, a stable creation time).
        try FileManager.default.removeItem(atPath: directory + "/agent/capsules/\(orphan).json")
        #expect(try await runtime.info(id).state == .running, "shutdown leaves capsules running")

        let second = try await AgentHarness.start(runtime: runtime, dataDirectory: directory)
        defer { Task { await second.shutdown() } }
        #expect(await runtime.startCount == 2)
        let readopted = try await second.request(.GET, "/v1/capsules/\(id)").decode(AgentCapsule.self)
        #expect(readopted.timeoutSec == 600)
        #expect(abs(readopted.createdAt.timeIntervalSince(created.createdAt)) < 0.002)
        #expect(readopted.status == .running)
        #expect(try await second.request(.POST, "/v1/capsules/\(id)/envd/exec", json: ExecRequest(cmd: "true")).status == 200)
        let adopted = try await second.request(.GET, "/v1/capsules/\(orphan)").decode(AgentCapsule.self)
        #expect(adopted.timeoutSec == 0 && adopted.status == .running)
        try await Task.sleep(for: .milliseconds(20))
        #expect(try await second.request(.GET, "/v1/capsules/\(orphan)").decode(AgentCapsule.self).createdAt == adopted.createdAt)
    }

    static func status(_ agent: AgentHarness, _ id: String) async throws -> AgentCapsuleStatus {
        try await agent.request(.GET, "/v1/capsules/\(id)").decode(AgentCapsule.self).status
    }
}

/// `count` 1 MiB blocks of pseudo-random bytes, hashed as they are produced.
struct Blocks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let count: Int
    let digest: Digest

    struct AsyncIterator: AsyncIteratorProtocol {
        let count: Int
        let digest: Digest
        var index = 0
        var state: UInt64 = 0x5eed

        mutating func next() async -> ByteBuffer? {
            guard index < count else {
                digest.finish()
                return nil
            }
            var buffer = ByteBufferAllocator().buffer(capacity: 1 << 20)
            for _ in 0..<(1 << 17) {
                state &+= 0x9E37_79B9_7F4A_7C15
                var z = state
                z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                buffer.writeInteger(z ^ (z >> 31))
            }
            digest.update(buffer)
            index += 1
            return buffer
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(count: count, digest: digest) }
}

/// SHA-256 of what was sent.
final class Digest: Sendable {
    private let state = Mutex<(hasher: SHA256, value: SHA256.Digest?)>((SHA256(), nil))
    func update(_ buffer: ByteBuffer) { state.withLock { $0.hasher.update(data: buffer.readableBytesView) } }
    func finish() { state.withLock { if $0.value == nil { $0.value = $0.hasher.finalize() } } }
    var value: SHA256.Digest? { state.withLock { $0.value } }
}

/// The agent API over the real QEMU runtime: gated exactly like `RuntimeIntegrationTests` (root and
/// qemu-system-x86; the test image is built or reused under `WRENN_TEST_DIR`). Own prefix `wa-`, pool
/// 10.202.0.0/16 and data directory `<WRENN_TEST_DIR>/agent-tests` (images shared), so it never touches the
/// runtime suite's namespaces or records.
@Suite("Agent API over QEMU (integration)", .serialized)
struct AgentQemuIntegrationTests {
    static var canRun: Bool { TestSupport.isRoot && Command.resolve("qemu-system-x86_64") != nil }

    @Test("create → exec through the proxy → pause (proxy refused) → resume (files intact) → metrics → destroy",
          .enabled(if: canRun, "needs root and qemu-system-x86"), .timeLimit(.minutes(10)))
    func lifecycleThroughTheAgent() async throws {
        _ = try await TestSupport.image()
        let network = try #require(NetworkConfig(namePrefix: "wa-", pool: "10.202.0.0/16"))
        let dataDirectory = TestSupport.dataDirectory + "/agent-tests"
        let runtime = QemuMicrovmRuntime(config: RuntimeConfig(
            dataDirectory: dataDirectory, network: network, imagesDirectory: TestSupport.dataDirectory + "/images"))
        let agent = try await AgentHarness.start(runtime: runtime, dataDirectory: dataDirectory)
        let id = "cl-agent-\(UUID().uuidString.prefix(8).lowercased())"
        do {
            let clock = ContinuousClock()
            var t0 = clock.now
            let created = try await agent.request(.POST, "/v1/capsules", json: AgentCreateCapsule(
                id: id, template: TestSupport.imageName, vcpus: 1, memoryMB: 512, diskSizeMB: 3072, timeoutSec: 0), timeout: 300)
            print("agent create (incl. any template cold boot): \(clock.now - t0)")
            #expect(created.status == 201, "\(created.text)")
            let capsule = try created.decode(AgentCapsule.self)
            #expect(capsule.status == .running)
            #expect(capsule.template == TestSupport.imageName)
            #expect(capsule.metadata["vmm_version"]?.hasPrefix("qemu-") == true)

            t0 = clock.now
            let hello = try await Self.exec(agent, id, "echo hello; echo 42 > /tmp/agent-marker")
            print("first exec through the agent: \(clock.now - t0)")
            #expect(hello.stdout == "hello\n")

            let paused = try await agent.request(.POST, "/v1/capsules/\(id)/pause", timeout: 120)
            #expect(try paused.decode(AgentCapsule.self).status == .paused, "\(paused.text)")
            let refused = try await agent.request(.POST, "/v1/capsules/\(id)/envd/exec", json: ExecRequest(cmd: "true"))
            #expect(refused.status == 409 && refused.errorCode == "invalid_state")

            let resumed = try await agent.request(.POST, "/v1/capsules/\(id)/resume", timeout: 120)
            #expect(try resumed.decode(AgentCapsule.self).status == .running, "\(resumed.text)")
            #expect(try await Self.exec(agent, id, "cat /tmp/agent-marker").stdout == "42\n")

            // Live snapshot → listed as a snapshot template → deleted; base images cannot be deleted.
            let snapName = "agent-snap-\(id.suffix(8))"
            let snap = try await agent.request(.POST, "/v1/capsules/\(id)/snapshot", json: AgentSnapshotRequest(name: snapName), timeout: 300)
            #expect(snap.status == 201, "\(snap.text)")
            #expect(try snap.decode(AgentTemplate.self).type == "snapshot")
            #expect(try await agent.request(.POST, "/v1/capsules/\(id)/snapshot", json: AgentSnapshotRequest(name: snapName)).errorCode == "conflict")
            let templates = try await agent.request(.GET, "/v1/templates").decode([AgentTemplate].self)
            #expect(templates.contains { $0.name == snapName && $0.type == "snapshot" && $0.sizeBytes > 0 })
            #expect(templates.contains { $0.name == TestSupport.imageName && $0.type == "base" })
            #expect(try await agent.request(.DELETE, "/v1/templates/\(TestSupport.imageName)").errorCode == "conflict")
            // A clone of the snapshot sees the source's files; while it exists the template cannot go.
            let clone = id + "-clone"
            let cloned = try await agent.request(.POST, "/v1/capsules", json: AgentCreateCapsule(
                id: clone, template: snapName, vcpus: 1, memoryMB: 512, diskSizeMB: 3072, timeoutSec: 0), timeout: 300)
            #expect(cloned.status == 201, "\(cloned.text)")
            #expect(try await Self.exec(agent, clone, "cat /tmp/agent-marker").stdout == "42\n")
            #expect(try await agent.request(.DELETE, "/v1/templates/\(snapName)").errorCode == "conflict")
            #expect(try await agent.request(.DELETE, "/v1/capsules/\(clone)", timeout: 60).status == 204)
            #expect(try await agent.request(.DELETE, "/v1/templates/\(snapName)").status == 204)
            #expect(try await agent.request(.DELETE, "/v1/templates/\(snapName)").errorCode == "not_found")
            #expect(try await Self.exec(agent, id, "cat /tmp/agent-marker").stdout == "42\n", "capsule runs on after the snapshot")

            // The sampler has seen the running VMM (every 500 ms).
            try await Task.sleep(for: .seconds(2))
            let metrics = try await agent.request(.GET, "/v1/capsules/\(id)/metrics?range=5m").decode(AgentMetrics.self)
            #expect(metrics.points.contains { $0.memoryBytes > 0 && $0.diskBytes > 0 }, "\(metrics.points.suffix(3))")
            let host = try await agent.request(.GET, "/v1/host").decode(AgentHostFacts.self)
            #expect(["kvm", "tcg"].contains(host.accelerator))

            #expect(try await agent.request(.DELETE, "/v1/capsules/\(id)", timeout: 60).status == 204)
            #expect(try await agent.request(.GET, "/v1/capsules/\(id)").errorCode == "not_found")
            #expect(!FileManager.default.fileExists(atPath: runtime.layout(of: id).directory))
        } catch {
            try? await runtime.destroy(id)
            try? await runtime.destroy(id + "-clone")
            await agent.shutdown()
            throw error
        }
        await agent.shutdown()
    }

    struct ExecResult: Decodable {
        var stdout: String
        var exitCode: Int
        enum CodingKeys: String, CodingKey { case stdout, exitCode = "exit_code" }
    }

    static func exec(_ agent: AgentHarness, _ id: String, _ script: String) async throws -> ExecResult {
        let reply = try await agent.request(.POST, "/v1/capsules/\(id)/envd/exec", json: ExecRequest(cmd: "/bin/sh", args: ["-c", script]), timeout: 120)
        #expect(reply.status == 200, "exec answered \(reply.status): \(reply.text)")
        return try reply.decode(ExecResult.self)
    }
}
