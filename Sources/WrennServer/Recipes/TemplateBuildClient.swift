import AsyncHTTPClient
import Foundation
import HTTPTypes
import HummingbirdWSClient
import Logging
import NIOCore
import NIOFoundationCompat
import Synchronization
import WrennWire

/// The client side of `wrenn template build`: signs in as a platform admin (builds are session-only), submits a
/// recipe file as a build (with its archive), and follows its live console, printing each step and its output as
/// they come, until it ends.
public struct TemplateBuildClient: Sendable {
    public let baseURL: String
    public let email: String
    public let password: String

    public init(baseURL: String, email: String, password: String) {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        self.baseURL = base; self.email = email; self.password = password
    }

    public struct Failure: Error, CustomStringConvertible { public var description: String }

    /// Submits `request` (with `archive`, a tar for COPY, streamed as multipart from disk) and prints the build's
    /// steps until it ends; returns the final build.
    public func run(_ request: CreateBuildRequest, archive: URL? = nil, print say: @escaping @Sendable (String) -> Void) async throws -> Build {
        let http = HTTPClient.shared
        let cookies = try await signIn(http)
        var submit = HTTPClientRequest(url: "\(baseURL)/v1/admin/builds")
        submit.method = .POST
        submit.headers.add(name: "Cookie", value: cookies.header)
        submit.headers.add(name: "X-CSRF-Token", value: cookies.csrf)
        let config = try WireCoding.makeEncoder().encode(request)
        if let archive {
            let boundary = "wrenn-build-\(UUID().uuidString)"
            var head = ByteBuffer()
            head.writeString("--\(boundary)\r\nContent-Disposition: form-data; name=\"config\"\r\nContent-Type: application/json\r\n\r\n")
            head.writeBytes(config)
            head.writeString("\r\n--\(boundary)\r\nContent-Disposition: form-data; name=\"archive\"; filename=\"archive.tar\"\r\n")
            head.writeString("Content-Type: application/x-tar\r\n\r\n")
            let tail = ByteBuffer(string: "\r\n--\(boundary)--\r\n")
            submit.headers.add(name: "Content-Type", value: "multipart/form-data; boundary=\(boundary)")
            submit.body = .stream(try FileChunks.stream(archive, prefix: head, suffix: tail),
                                  length: .known(Int64(head.readableBytes + tail.readableBytes) + FileChunks.size(archive)))
        } else {
            submit.headers.add(name: "Content-Type", value: "application/json")
            submit.body = .bytes(ByteBuffer(data: config))
        }
        var build: Build = try await call(http, submit, expect: 202)
        say("build \(build.id): \(build.name) from \(build.baseTemplate), \(build.totalSteps) steps")
        // The live console shows each step's output as it comes; should it fail, polling shows the finished steps.
        var shown = await follow(build, cookies: cookies, print: say) ? Int.max : 0
        while true {
            var get = HTTPClientRequest(url: "\(baseURL)/v1/admin/builds/\(build.id)")
            get.headers.add(name: "Cookie", value: cookies.header)
            build = try await call(http, get, expect: 200)
            for entry in build.logs.dropFirst(min(shown, build.logs.count)) {
                say("[\(entry.step)/\(build.totalSteps)] \(entry.ok ? "ok" : "FAILED (exit \(entry.exit))") \(entry.elapsedMs) ms  \(entry.cmd)")
                if !entry.ok || entry.phase == "healthcheck" {
                    if !entry.stdout.isEmpty { say(entry.stdout) }
                    if !entry.stderr.isEmpty { say(entry.stderr) }
                }
            }
            shown = max(shown, build.logs.count)
            if build.status.isFinal { break }
            try await Task.sleep(for: .seconds(1))
        }
        say("build \(build.id): \(build.status.rawValue)\(build.error.map { " — \($0)" } ?? "")")
        return build
    }

    /// Prints the build's console (`GET /v1/admin/builds/{id}/stream`) until its final status: each step as it
    /// starts, its output line by line as it is produced, and how it ended. False when the console could not be
    /// followed to the end.
    func follow(_ build: Build, cookies: (header: String, csrf: String), print say: @escaping @Sendable (String) -> Void) async -> Bool {
        let url = baseURL.replacingOccurrences(of: "http://", with: "ws://").replacingOccurrences(of: "https://", with: "wss://")
            + "/v1/admin/builds/\(build.id)/stream"
        var headers = HTTPFields()
        headers[.cookie] = cookies.header
        var logger = Logger(label: "wrenn.template-build")
        logger.logLevel = .critical
        let total = build.totalSteps
        let ended = Mutex(false)
        _ = try? await WebSocketClient.connect(url: url, configuration: .init(maxFrameSize: 16 << 20, additionalHeaders: headers),
                                               logger: logger) { inbound, _, _ in
            let decoder = WireCoding.makeDecoder()
            var partial = ["stdout": "", "stderr": ""]
            func flush() {
                for (stream, rest) in partial where !rest.isEmpty { say(rest); partial[stream] = "" }
            }
            for try await message in inbound.messages(maxSize: 16 << 20) {
                guard case .text(let text) = message, let frame = try? decoder.decode(BuildConsoleFrame.self, from: Data(text.utf8)) else { continue }
                switch frame.type {
                case "step-start":
                    say("[\(frame.step ?? 0)/\(total)] \(frame.cmd ?? "")")
                case "output":
                    let stream = frame.stream == "stderr" ? "stderr" : "stdout"
                    var lines = (partial[stream] ?? "") + (frame.data ?? "")
                    while let newline = lines.firstIndex(of: "\n") {
                        say(String(lines[..<newline]))
                        lines = String(lines[lines.index(after: newline)...])
                    }
                    partial[stream] = lines
                case "step-end":
                    flush()
                    let how = frame.ok == true ? "ok" : "FAILED (exit \(frame.exit ?? -1))"
                    say("[\(frame.step ?? 0)/\(total)] \(how) \(frame.elapsedMs ?? 0) ms")
                case "build-status" where frame.status?.isFinal == true:
                    flush()
                    ended.withLock { $0 = true }
                    return
                default:
                    break
                }
            }
        }
        return ended.withLock { $0 }
    }

    func signIn(_ http: HTTPClient) async throws -> (header: String, csrf: String) {
        var login = HTTPClientRequest(url: "\(baseURL)/v1/auth/login")
        login.method = .POST
        login.headers.add(name: "Content-Type", value: "application/json")
        login.body = .bytes(ByteBuffer(data: try JSONEncoder().encode(["email": email, "password": password])))
        let response = try await http.execute(login, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 20)
        guard response.status.code == 200 else { throw Failure(description: "sign-in failed: \(Self.message(Data(buffer: body)))") }
        var jar: [String: String] = [:]
        for field in response.headers["Set-Cookie"] {
            let pair = field.split(separator: ";", maxSplits: 1)[0]
            guard let eq = pair.firstIndex(of: "=") else { continue }
            jar[String(pair[..<eq]).trimmingCharacters(in: .whitespaces)] = String(pair[pair.index(after: eq)...])
        }
        guard let sid = jar["wrenn_sid"], let csrf = jar["wrenn_csrf"] else { throw Failure(description: "sign-in answered without a session") }
        return ("wrenn_sid=\(sid); wrenn_csrf=\(csrf)", csrf)
    }

    func call<T: Decodable>(_ http: HTTPClient, _ request: HTTPClientRequest, expect: UInt) async throws -> T {
        let response = try await http.execute(request, timeout: .minutes(10))
        let body = Data(buffer: try await response.body.collect(upTo: 64 << 20))
        guard response.status.code == expect else {
            throw Failure(description: "\(request.method) \(request.url): HTTP \(response.status.code): \(Self.message(body))")
        }
        return try WireCoding.makeDecoder().decode(T.self, from: body)
    }

    static func message(_ body: Data) -> String {
        (try? JSONDecoder().decode(ErrorEnvelope.self, from: body))?.error.message ?? String(decoding: body.prefix(2000), as: UTF8.self)
    }
}
