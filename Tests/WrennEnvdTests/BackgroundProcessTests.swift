import AsyncHTTPClient
import Foundation
import NIOCore
import Testing
import WrennWire

@Suite("envd background processes")
struct BackgroundProcessTests {
    /// Collects an attach stream's frames until `exit` (or close).
    static func attach(_ client: EnvdClient, _ selector: String) async throws -> [ProcessStreamFrame] {
        let frames = FrameBox()
        do {
            try await withTimeout(60) {
                try await client.webSocket("/processes/\(selector)/stream") { reader, _ in
                    while let frame = try await reader.next(ProcessStreamFrame.self) {
                        frames.append(frame)
                        if frame.type == .exit || frame.type == .error { break }
                    }
                }
            }
        } catch {
            throw EnvdTestError("attach to \(selector) failed after frames \(frames.all.map(\.type)): \(error)")
        }
        return frames.all
    }

    static func waitUntilExited(_ client: EnvdClient, pid: Int32) async throws {
        for _ in 0..<200 {
            let list = try await client.get("/processes").decode(ProcessListResponse.self)
            if !list.processes.contains(where: { $0.pid == pid }) { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw EnvdTestError("process \(pid) did not exit")
    }

    @Test("a 10,000-line job attached after it finished replays from line 1")
    func lateAttachReplaysEverything() async throws {
        let envd = try await EnvdProcess.start()
        let client = EnvdClient(envd)
        let reply = try await client.post(
            "/exec", json: ExecRequest(cmd: "/bin/sh", args: ["-c", "seq -f 'line %g' 1 10000; echo warn >&2"], background: true)
        )
        #expect(reply.status == 202)
        let started = try reply.decode(BackgroundExecResponse.self)
        #expect(started.tag.hasPrefix("proc-") && started.tag.count == 13)
        try await Self.waitUntilExited(client, pid: started.pid)

        let frames = try await Self.attach(client, started.tag)
        #expect(frames.first?.type == .start)
        #expect(frames.first?.pid == started.pid)
        let stdout = frames.filter { $0.type == .stdout }.compactMap(\.data).joined()
        let lines = stdout.split(separator: "\n")
        #expect(lines.count == 10_000)
        #expect(lines.first == "line 1")
        #expect(lines.last == "line 10000")
        #expect(frames.filter { $0.type == .stderr }.compactMap(\.data).joined() == "warn\n")
        #expect(frames.last?.type == .exit)
        #expect(frames.last?.exitCode == 0)
    }

    @Test("attach to a running job replays, then tails live output (WebSocket and NDJSON)")
    func attachTailsLiveOutput() async throws {
        let envd = try await EnvdProcess.start()
        let client = EnvdClient(envd)
        let started = try await client.post(
            "/exec",
            json: ExecRequest(cmd: "/bin/sh", args: ["-c", "echo early; sleep 1; echo late; printf '\\377\\n'"], background: true, tag: "tailme")
        ).decode(BackgroundExecResponse.self)
        #expect(started.tag == "tailme")

        async let ndjson: [ProcessStreamFrame] = withTimeout(30) {
            var request = HTTPClientRequest(url: envd.baseURL + "/processes/tailme/stream")
            request.headers.add(name: "Authorization", value: "Bearer \(envd.token)")
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            #expect(response.headers.first(name: "content-type") == "application/x-ndjson")
            let body = try await response.body.collect(upTo: 1 << 20)
            return try String(buffer: body).split(separator: "\n").map {
                try JSONDecoder().decode(ProcessStreamFrame.self, from: Data($0.utf8))
            }
        }
        let frames = try await Self.attach(client, "tailme")
        let data = frames.filter { $0.type == .stdout }
        #expect(data.first?.data == "early\n")
        #expect(data.contains { $0.encoding == .base64 }, "the chunk with \\xff is sent base64")
        let bytes = data.reduce(into: Data()) { all, frame in
            guard let text = frame.data else { return }
            all += frame.encoding == .base64 ? (Data(base64Encoded: text) ?? Data()) : Data(text.utf8)
        }
        #expect(bytes == Data("early\nlate\n".utf8) + Data([0xff, 0x0a]))
        #expect(frames.last?.type == .exit)
        let lines = try await ndjson
        #expect(lines.first?.type == .start)
        #expect(lines.last?.type == .exit)
        #expect(lines.contains { $0.data == "early\n" })
    }

    @Test("kill by tag stops the process group; unknown selectors are 404; duplicate tags 409")
    func killByTag() async throws {
        let envd = try await EnvdProcess.start()
        let client = EnvdClient(envd)
        let marker = "/tmp/envd-kill-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: marker) }
        let started = try await client.post(
            "/exec", json: ExecRequest(cmd: "/bin/sh", args: ["-c", "sleep 300 & echo $! > \(marker); sleep 300"], background: true, tag: "victim")
        ).decode(BackgroundExecResponse.self)

        let duplicate = try await client.post("/exec", json: ExecRequest(cmd: "sleep", args: ["1"], background: true, tag: "victim"))
        #expect(duplicate.status == 409)

        let list = try await client.get("/processes").decode(ProcessListResponse.self)
        let entry = try #require(list.processes.first { $0.pid == started.pid })
        #expect(entry.tag == "victim")
        #expect(entry.cmd == "/bin/sh")
        #expect(list.processes.contains { $0.pid == envd.pid }, "foreign processes are listed too")

        var grandchild: Int32?
        for _ in 0..<100 where grandchild == nil {
            grandchild = (try? String(contentsOfFile: marker, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            if grandchild == nil { try await Task.sleep(for: .milliseconds(20)) }
        }
        let killed = try await client.request(.DELETE, "/processes/victim?signal=SIGTERM")
        #expect(killed.status == 204)
        let frames = try await Self.attach(client, "victim")
        #expect(frames.last?.type == .exit)
        #expect(frames.last?.signal == "SIGTERM")
        try await Task.sleep(for: .milliseconds(200))
        #expect(!isAlive(try #require(grandchild)))

        #expect(try await client.request(.DELETE, "/processes/victim").status == 404, "already exited")
        #expect(try await client.request(.DELETE, "/processes/no-such-tag").status == 404)
        #expect(try await client.request(.DELETE, "/processes/999999999").status == 404)
        #expect(try await client.request(.DELETE, "/processes/victim?signal=SIGSTOP").status == 400)
    }

    @Test("kill by pid defaults to SIGKILL")
    func killByPid() async throws {
        let envd = try await EnvdProcess.start()
        let client = EnvdClient(envd)
        let started = try await client.post("/exec", json: ExecRequest(cmd: "sleep", args: ["300"], background: true)).decode(BackgroundExecResponse.self)
        #expect(try await client.request(.DELETE, "/processes/\(started.pid)").status == 204)
        let frames = try await Self.attach(client, "\(started.pid)")
        #expect(frames.last?.exitCode == 137)
        #expect(frames.last?.signal == "SIGKILL")
    }
}

/// Frames gathered inside a WebSocket handler.
final class FrameBox: @unchecked Sendable {
    private let lock = NSLock()
    private var frames: [ProcessStreamFrame] = []
    func append(_ frame: ProcessStreamFrame) { lock.withLock { frames.append(frame) } }
    var all: [ProcessStreamFrame] { lock.withLock { frames } }
}
