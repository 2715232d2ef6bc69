import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWSClient
import Logging
import ServiceLifecycle
import NIOCore
import NIOHTTP1
import Synchronization
import WrennWire
@testable import WrennAgent
import WrennTestSupport

/// An `AgentServer` on a loopback port over a runtime (``EnvdBackedRuntime`` by default), with a throw-away data
/// directory unless one is given.
final class AgentHarness: Sendable {
    let runtime: any Runtime
    private let ownsDirectory: Bool
    let token: String
    let dataDirectory: String
    let port: Int
    private let task: Task<Void, any Error>
    private let group: ServiceGroup

    var baseURL: String { "http://127.0.0.1:\(port)" }
    var wsURL: String { "ws://127.0.0.1:\(port)" }

    static func quietLogger(_ label: String) -> Logger {
        var logger = Logger(label: label)
        logger.logLevel = ProcessInfo.processInfo.environment["WRENN_TEST_AGENT_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        return logger
    }

    /// Starts an agent; `configure` adjusts the configuration (TTL minimum, reaper interval, callback URL).
    static func start(
        runtime: any Runtime = EnvdBackedRuntime(), dataDirectory: String? = nil,
        configure: (inout AgentServerConfiguration) -> Void = { _ in }
    ) async throws -> AgentHarness {
        let directory = dataDirectory ?? NSTemporaryDirectory() + "wrenn-agent-test-" + UUID().uuidString.prefix(8).lowercased()
        let token = "agent-token-" + UUID().uuidString
        var configuration = AgentServerConfiguration(host: "127.0.0.1", port: 0, token: token, dataDirectory: directory)
        configure(&configuration)
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let server = AgentServer(configuration: configuration, runtime: runtime, logger: quietLogger("test.agent")) { port in
            continuation.yield(port)
            continuation.finish()
        }
        let group = ServiceGroup(services: [server], gracefulShutdownSignals: [], logger: quietLogger("test.group"))
        let task = Task { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            task.cancel()
            throw HarnessError("agent did not start: \(String(describing: try? await task.value))")
        }
        return AgentHarness(runtime: runtime, token: configuration.token, dataDirectory: directory,
                            ownsDirectory: dataDirectory == nil, port: port, task: task, group: group)
    }

    private init(runtime: any Runtime, token: String, dataDirectory: String, ownsDirectory: Bool, port: Int,
                 task: Task<Void, any Error>, group: ServiceGroup) {
        self.group = group
        self.runtime = runtime
        self.ownsDirectory = ownsDirectory
        self.token = token
        self.dataDirectory = dataDirectory
        self.port = port
        self.task = task
    }

    /// Stops the agent with a graceful shutdown (capsules stay with the runtime, as in production); returns
    /// whether it ended by itself within 15 s (else it is cancelled).
    @discardableResult
    func stop() async -> Bool {
        await group.triggerGracefulShutdown()
        let task = self.task
        let fired = Flag()
        let watchdog = Task {
            try await Task.sleep(for: .seconds(15))
            fired.value.withLock { $0 = true }
            task.cancel()
        }
        let result = await task.result
        watchdog.cancel()
        return !fired.value.withLock { $0 } && (try? result.get()) != nil
    }

    /// Stops the agent and every test envd, and removes the data directory if the harness made it.
    func shutdown() async {
        await stop()
        await (runtime as? EnvdBackedRuntime)?.shutdown()
        if ownsDirectory { try? FileManager.default.removeItem(atPath: dataDirectory) }
    }

    struct Reply: Sendable {
        let status: Int
        let headers: HTTPHeaders
        let body: ByteBuffer
        var text: String { String(buffer: body) }
        func decode<T: Decodable>(_ type: T.Type) throws -> T {
            try WireCoding.makeDecoder().decode(T.self, from: Data(body.readableBytesView))
        }
        var errorCode: String? { (try? decode(ErrorEnvelope.self))?.error.code }
    }

    func request(_ method: HTTPMethod, _ path: String, json: (any Encodable)? = nil, rawBody: ByteBuffer? = nil,
                 authorization: String?? = nil, timeout: Int64 = 60) async throws -> Reply {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        switch authorization {
        case .none: request.headers.add(name: "Authorization", value: "Bearer \(token)")
        case .some(.some(let value)): request.headers.add(name: "Authorization", value: value)
        case .some(.none): break
        }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try WireCoding.makeEncoder().encode(json)))
        } else if let rawBody {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(rawBody)
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(timeout))
        let body = try await response.body.collect(upTo: 64 << 20)
        return Reply(status: Int(response.status.code), headers: response.headers, body: body)
    }

    /// Creates a capsule and returns it.
    func create(_ id: String, template: String = "minimal", timeoutSec: Int = 0) async throws -> Reply {
        try await request(.POST, "/v1/capsules", json: AgentCreateCapsule(
            id: id, template: template, vcpus: 1, memoryMB: 512, diskSizeMB: 1024, timeoutSec: timeoutSec))
    }

    /// Opens a WebSocket through the agent and runs `body` with its inbound stream and outbound writer.
    func webSocket(
        _ path: String,
        _ body: @escaping @Sendable (WebSocketInboundStream, WebSocketOutboundWriter) async throws -> Void
    ) async throws -> WebSocketCloseFrame? {
        var headers = HTTPFields()
        headers[.authorization] = "Bearer \(token)"
        return try await WebSocketClient.connect(
            url: wsURL + path,
            configuration: .init(maxFrameSize: 1 << 20, additionalHeaders: headers, closeTimeout: .seconds(2)),
            logger: Self.quietLogger("test.ws")
        ) { inbound, outbound, _ in
            try await body(inbound, outbound)
        }
    }
}

/// A flag shared with a task.
final class Flag: Sendable {
    let value = Mutex(false)
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A control plane stand-in: records `POST /v1/hosts/sandbox-events` (checking the bearer token) and answers 503
/// to the first `failFirst` attempts, so delivery retries are exercised.
final class EventSink: Sendable {
    final class State: Sendable {
        let value = Mutex<(events: [AgentCapsuleEvent], attempts: Int, badAuth: Int)>((events: [], attempts: 0, badAuth: 0))
    }

    let port: Int
    private let task: Task<Void, any Error>
    private let state: State

    var url: String { "http://127.0.0.1:\(port)" }
    var events: [AgentCapsuleEvent] { state.value.withLock { $0.events } }
    var attempts: Int { state.value.withLock { $0.attempts } }
    var badAuth: Int { state.value.withLock { $0.badAuth } }

    private init(port: Int, task: Task<Void, any Error>, state: State) {
        self.port = port
        self.task = task
        self.state = state
    }

    static func start(token: String, failFirst: Int) async throws -> EventSink {
        let state = State()
        let router = Router()
        router.post("/v1/hosts/sandbox-events") { request, _ -> Response in
            let attempt = state.value.withLock { $0.attempts += 1; return $0.attempts }
            guard request.headers[.authorization] == "Bearer \(token)" else {
                state.value.withLock { $0.badAuth += 1 }
                return Response(status: .unauthorized)
            }
            if attempt <= failFirst { return Response(status: .serviceUnavailable) }
            let body = try await request.body.collect(upTo: 1 << 20)
            let event = try WireCoding.makeDecoder().decode(AgentCapsuleEvent.self, from: Data(body.readableBytesView))
            state.value.withLock { $0.events.append(event) }
            return Response(status: .noContent)
        }
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                continuation.yield(channel.localAddress?.port ?? 0)
                continuation.finish()
            },
            logger: AgentHarness.quietLogger("test.sink"))
        let task = Task { try await app.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw HarnessError("event sink did not start") }
        return EventSink(port: port, task: task, state: state)
    }

    func stop() { task.cancel() }
}
