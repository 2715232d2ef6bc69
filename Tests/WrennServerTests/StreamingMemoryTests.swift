import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Testing
import WrennTestSupport
import WrennWire

/// A 1 GiB upload (`files/stream/write`) and a 1 GiB download (`files/stream/read`) through a control plane that runs
/// as its own process (`wrenn dev --no-agent`, pointed at a host agent in this process): both SHA-256s must match
/// and the control plane's peak RSS (`VmHWM` in `/proc/<pid>/status`) must stay under 128 MiB — so neither
/// direction is ever buffered whole.
@Suite("1 GiB through the control plane in bounded memory", .serialized)
struct StreamingMemoryTests {
    static let size = 1 << 30
    static let chunk = 1 << 20
    static let limitKiB = 128 * 1024

    /// Deterministic content: one random-looking 1 MiB block, its first 8 bytes replaced by the chunk index.
    struct Content: AsyncSequence, Sendable {
        typealias Element = ByteBuffer
        let block: [UInt8]
        let chunks: Int

        struct AsyncIterator: AsyncIteratorProtocol {
            let block: [UInt8]
            let chunks: Int
            var index = 0
            mutating func next() async -> ByteBuffer? {
                guard index < chunks else { return nil }
                defer { index += 1 }
                return Content.chunk(block, index)
            }
        }

        func makeAsyncIterator() -> AsyncIterator { AsyncIterator(block: block, chunks: chunks) }

        static func chunk(_ block: [UInt8], _ index: Int) -> ByteBuffer {
            var buffer = ByteBuffer(bytes: block)
            buffer.setInteger(UInt64(index), at: 0)
            return buffer
        }
    }

    /// A multipart body (`path` part, then `file` part) wrapping `Content`, generated as it is sent.
    struct Multipart: AsyncSequence, Sendable {
        typealias Element = ByteBuffer
        let head: ByteBuffer
        let content: Content
        let tail: ByteBuffer

        struct AsyncIterator: AsyncIteratorProtocol {
            var stage = 0
            var inner: Content.AsyncIterator
            let head: ByteBuffer
            let tail: ByteBuffer
            mutating func next() async -> ByteBuffer? {
                switch stage {
                case 0: stage = 1; return head
                case 1:
                    if let next = await inner.next() { return next }
                    stage = 2; return tail
                default: return nil
                }
            }
        }

        func makeAsyncIterator() -> AsyncIterator { AsyncIterator(inner: content.makeAsyncIterator(), head: head, tail: tail) }
    }

    /// `wrenn` built next to this test bundle.
    static func wrennBinary() throws -> String {
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [directory, directory.deletingLastPathComponent()] {
            let path = candidate.appendingPathComponent("wrenn").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw LocalAgentError("wrenn executable not found next to \(CommandLine.arguments[0]); run `swift build --build-tests`")
    }

    static func status(_ pid: Int32, _ field: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            return Int(line.dropFirst(field.count + 1).trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "")
        }
        return nil
    }

    @Test func gibibyteRoundTripStaysUnder128MiB() async throws {
        let agent = try await LocalAgent.start()
        let data = NSTemporaryDirectory() + "wrenn-mem-" + UUID().uuidString.prefix(8)
        let guestDir = NSTemporaryDirectory() + "wrenn-mem-guest-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: guestDir, withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Self.wrennBinary())
        process.arguments = ["dev", "--no-agent", "--listen", "127.0.0.1:0", "--data-dir", data]
        var env = ProcessInfo.processInfo.environment
        env["WRENN_AGENT_URL"] = agent.baseURL
        env["WRENN_AGENT_TOKEN"] = agent.token
        env["WRENN_BCRYPT_COST"] = "4"
        env["LOG_LEVEL"] = "warning"
        for key in ["WRENN_DIR", "WRENN_LISTEN_ADDR", "DATABASE_URL"] { env[key] = nil }
        process.environment = env
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        process.currentDirectoryURL = URL(fileURLWithPath: data) // no stray .env from the working directory
        try process.run()
        defer {
            process.terminate()
            process.waitUntilExit()
            try? FileManager.default.removeItem(atPath: data)
            try? FileManager.default.removeItem(atPath: guestDir)
        }
        do {
            try await run(pid: process.processIdentifier, data: data, guestDir: guestDir)
        } catch {
            await agent.stop()
            throw error
        }
        await agent.stop()
    }

    func run(pid: Int32, data: String, guestDir: String) async throws {
        // The dev bootstrap writes the base URL (with the bound port) and an API key once it listens.
        var base = "", key = ""
        let deadline = ContinuousClock.now + .seconds(60)
        while base.isEmpty || key.isEmpty {
            if ContinuousClock.now > deadline { throw LocalAgentError("control plane did not write dev.env") }
            try await Task.sleep(for: .milliseconds(100))
            guard let text = try? String(contentsOfFile: data + "/dev.env", encoding: .utf8) else { continue }
            for line in text.split(separator: "\n") {
                if line.hasPrefix("WRENN_BASE_URL=") { base = String(line.dropFirst("WRENN_BASE_URL=".count)) }
                if line.hasPrefix("WRENN_API_KEY=") { key = String(line.dropFirst("WRENN_API_KEY=".count)) }
            }
        }
        let http = HTTPClient.shared
        func call(_ method: HTTPMethod, _ path: String, json: String? = nil) async throws -> (UInt, ByteBuffer) {
            var request = HTTPClientRequest(url: base + path)
            request.method = method
            request.headers.add(name: "X-API-Key", value: key)
            if let json { request.headers.add(name: "Content-Type", value: "application/json"); request.body = .bytes(ByteBuffer(string: json)) }
            let response = try await http.execute(request, timeout: .seconds(60))
            return (response.status.code, try await response.body.collect(upTo: 1 << 20))
        }
        let (created, createdBody) = try await call(.POST, "/v1/capsules", json: "{}")
        #expect(created == 202)
        let id = try WireCoding.makeDecoder().decode(Capsule.self, from: Data(buffer: createdBody)).id
        while try WireCoding.makeDecoder().decode(Capsule.self, from: Data(buffer: try await call(.GET, "/v1/capsules/\(id)").1)).status != .running {
            try await Task.sleep(for: .milliseconds(50))
        }
        let baseline = Self.status(pid, "VmRSS") ?? 0

        // Content and its digest.
        var generator = SystemRandomNumberGenerator()
        let block = (0..<Self.chunk).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let content = Content(block: block, chunks: Self.size / Self.chunk)
        var hasher = SHA256()
        for index in 0..<content.chunks { hasher.update(data: Content.chunk(block, index).readableBytesView) }
        let expected = hasher.finalize().map { String(format: "%02x", $0) }.joined()

        // Upload.
        let path = guestDir + "/big.bin"
        let boundary = "wrenn-mem-\(UUID().uuidString)"
        let head = ByteBuffer(string: "--\(boundary)\r\nContent-Disposition: form-data; name=\"path\"\r\n\r\n\(path)\r\n"
            + "--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n"
            + "Content-Type: application/octet-stream\r\n\r\n")
        let tail = ByteBuffer(string: "\r\n--\(boundary)--\r\n")
        var upload = HTTPClientRequest(url: base + "/v1/capsules/\(id)/files/stream/write")
        upload.method = .POST
        upload.headers.add(name: "X-API-Key", value: key)
        upload.headers.add(name: "Content-Type", value: "multipart/form-data; boundary=\(boundary)")
        let length = head.readableBytes + Self.size + tail.readableBytes
        upload.body = .stream(Multipart(head: head, content: content, tail: tail), length: .known(Int64(length)))
        let uploaded = try await http.execute(upload, timeout: .minutes(20))
        _ = try await uploaded.body.collect(upTo: 1 << 20)
        #expect((200..<300).contains(uploaded.status.code))
        let afterUpload = Self.status(pid, "VmHWM") ?? 0

        // The file in the capsule has the digest (sha256sum inside it, through the API).
        let (execStatus, execBody) = try await call(.POST, "/v1/capsules/\(id)/exec",
                                                    json: #"{"cmd":"/bin/sh","args":["-c","sha256sum \#(path)"],"timeout":300}"#)
        #expect(execStatus == 200)
        let stdout = try WireCoding.makeDecoder().decode(ExecResponse.self, from: Data(buffer: execBody)).stdout
        #expect(stdout.hasPrefix(expected))

        // Download.
        var download = HTTPClientRequest(url: base + "/v1/capsules/\(id)/files/stream/read")
        download.method = .POST
        download.headers.add(name: "X-API-Key", value: key)
        download.headers.add(name: "Content-Type", value: "application/json")
        download.body = .bytes(ByteBuffer(string: #"{"path":"\#(path)"}"#))
        let response = try await http.execute(download, timeout: .minutes(20))
        #expect(response.status.code == 200)
        var reader = SHA256()
        var received = 0
        for try await part in response.body {
            reader.update(data: part.readableBytesView)
            received += part.readableBytes
        }
        #expect(received == Self.size)
        #expect(reader.finalize().map { String(format: "%02x", $0) }.joined() == expected)

        let peak = Self.status(pid, "VmHWM") ?? Int.max
        print("control plane RSS: \(baseline / 1024) MiB before, peak \(afterUpload / 1024) MiB after the upload, \(peak / 1024) MiB after the download (limit 128 MiB)")
        #expect(peak < Self.limitKiB, "control plane peak RSS \(peak / 1024) MiB")
        _ = try await call(.DELETE, "/v1/capsules/\(id)")
    }
}
