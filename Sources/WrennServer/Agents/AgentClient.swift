import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWSClient
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL
import WrennHTTP
import WrennProxy
import WrennWire

/// The control plane's client for one host agent (contract: `WrennWire/Agent/AgentAPI.swift`): every call the control
/// plane makes to an agent goes through here, routes never build agent requests themselves.
///
/// Two connection pools per agent (``Pools``): lifecycle calls (create, pause, destroy, list, …) never wait behind
/// data-plane calls (a foreground exec that runs for an hour, a large download), and data-plane calls do not share the
/// lifecycle pool's slots; WebSocket streams use connections of their own. Lifecycle calls get long deadlines (a
/// first create may boot a template cold). Agent errors that carry the public envelope with a public code
/// (`not_found`, `invalid_state`, `invalid_request`, `conflict`) pass through as `ServiceError`s; anything else becomes
/// 502 `agent_error`, and an unreachable agent 503 `host_unavailable`.
public struct AgentClient: Sendable {
    public let hostID: String
    public let baseURL: String
    let token: String
    let pools: Pools
    /// TLS for WebSocket connections to the agent (HTTP requests use `pools`, configured alike); nil for plain HTTP.
    let tls: TLSConfiguration?

    public init(hostID: String, baseURL: String, token: String, pools: Pools = AgentClient.plainHTTP, tls: TLSConfiguration? = nil) {
        self.hostID = hostID
        self.tls = tls
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        self.baseURL = base
        self.token = token
        self.pools = pools
    }

    /// The HTTP clients of one kind of agent connection (plain or mutual TLS), each with its own connection pool.
    public struct Pools: Sendable {
        /// Lifecycle and reads of the agent's own state: short, bounded calls.
        public let lifecycle: HTTPClient
        /// Data-plane calls through the agent to envd and guest ports. Its per-agent limit is high: each team's share
        /// is bounded by the control plane (`EdgeSettings.dataPlaneCallsPerTeam`) instead.
        public let data: HTTPClient

        /// Both pools for `tls` (nil: plain HTTP). Like `HTTPClient.shared` they live as long as the process.
        public init(tls: TLSConfiguration? = nil) {
            lifecycle = HTTPClient(eventLoopGroupProvider: .singleton, configuration: AgentClient.configuration(tls: tls, perHost: 16))
            data = HTTPClient(eventLoopGroupProvider: .singleton, configuration: AgentClient.configuration(tls: tls, perHost: 1024))
        }
    }

    /// How the control plane's agent clients are configured. No read timeout: a foreground exec or a stream is silent
    /// for as long as its command runs (a build's `pip install`, the SDK's `run(timeout=600)`); every call has its own
    /// deadline for the answer's head instead. `HTTPClient.shared` would cut such a call after 90 s without bytes.
    static func configuration(tls: TLSConfiguration?, perHost: Int) -> HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls, redirectConfiguration: .disallow,
                                                     timeout: .init(connect: .seconds(10)), decompression: .disabled)
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: perHost)
        return configuration
    }

    /// The pools for agents reached over plain HTTP (`wrenn dev`'s local agent, tests).
    public static let plainHTTP = Pools()

    /// The agent's WebSocket URL for `path` (`ws://` or `wss://` as the agent is reached).
    func webSocketURL(_ path: String) -> String {
        baseURL.replacingOccurrences(of: "http://", with: "ws://").replacingOccurrences(of: "https://", with: "wss://") + path
    }

    /// The headers that authenticate a WebSocket upgrade to the agent.
    var webSocketHeaders: HTTPFields {
        var headers = HTTPFields()
        headers[.authorization] = "Bearer \(token)"
        return headers
    }

    static let lifecycleDeadline: TimeAmount = .minutes(10)
    static let shortDeadline: TimeAmount = .seconds(30)

    public func host() async throws -> AgentHostFacts {
        try await call(.GET, "/v1/host", deadline: Self.shortDeadline, as: AgentHostFacts.self)
    }

    public func create(_ request: AgentCreateCapsule) async throws -> AgentCapsule {
        try await call(.POST, "/v1/capsules", body: request, deadline: Self.lifecycleDeadline, as: AgentCapsule.self)
    }

    public func capsule(_ id: String) async throws -> AgentCapsule {
        try await call(.GET, "/v1/capsules/\(id)", deadline: Self.shortDeadline, as: AgentCapsule.self)
    }

    public func capsules() async throws -> [AgentCapsule] {
        try await call(.GET, "/v1/capsules", deadline: Self.shortDeadline, as: AgentCapsuleList.self).capsules
    }

    public func destroy(_ id: String) async throws {
        try await callNoContent(.DELETE, "/v1/capsules/\(id)", deadline: Self.lifecycleDeadline)
    }

    public func pause(_ id: String) async throws -> AgentCapsule {
        try await call(.POST, "/v1/capsules/\(id)/pause", deadline: Self.lifecycleDeadline, as: AgentCapsule.self)
    }

    public func resume(_ id: String) async throws -> AgentCapsule {
        try await call(.POST, "/v1/capsules/\(id)/resume", deadline: Self.lifecycleDeadline, as: AgentCapsule.self)
    }

    public func ping(_ id: String) async throws {
        try await callNoContent(.POST, "/v1/capsules/\(id)/ping", deadline: Self.shortDeadline)
    }

    public func snapshot(_ id: String, name: String) async throws -> AgentTemplate {
        try await call(.POST, "/v1/capsules/\(id)/snapshot", body: AgentSnapshotRequest(name: name), deadline: Self.lifecycleDeadline,
                       as: AgentTemplate.self)
    }

    public func deleteTemplate(_ name: String) async throws {
        try await callNoContent(.DELETE, "/v1/templates/\(name)", deadline: Self.lifecycleDeadline)
    }

    public func metrics(_ id: String, range: String) async throws -> AgentMetrics {
        try await call(.GET, "/v1/capsules/\(id)/metrics?range=\(range)", deadline: Self.shortDeadline, as: AgentMetrics.self)
    }

    // MARK: Data plane

    /// The deadline for the head of a data-plane answer (a foreground exec or a 1 GiB upload answers at its end).
    static let dataDeadline: Duration = .seconds(2 * 3600)

    /// One call to the capsule's envd (`path` below envd's root, query included), on the data pool. The answer is
    /// returned as soon as its head arrives; its body streams. Unreachable agent: 503 `host_unavailable`.
    func envd(_ method: HTTPMethod, capsule: String, _ path: String, contentType: String? = nil, body: HTTPClientRequest.Body? = nil,
              deadline: Duration = AgentClient.dataDeadline) async throws -> HTTPClientResponse {
        var upstream = request(method, "/v1/capsules/\(capsule)/envd\(path)")
        if let contentType { upstream.headers.add(name: "Content-Type", value: contentType) }
        if let body { upstream.body = body }
        do {
            return try await pools.data.execute(upstream, deadline: .now() + TimeAmount(deadline))
        } catch {
            throw ServiceError(.unavailable, "host_unavailable", "the capsule's host agent is unreachable")
        }
    }

    /// Passes `request` on to `path` of the agent (the port proxy) through the edge's reverse proxy, on the data pool.
    func forward(_ request: Request, to path: String, requestHeaders: HeaderPolicy, responseHeaders: HeaderPolicy, extraHeaders: HTTPFields,
                 rewrite: (@Sendable (inout HTTPFields) -> Void)?, logger: Logger) async throws -> Response {
        var headers = extraHeaders
        headers[.authorization] = "Bearer \(token)"
        let route = ReverseProxy.Route(url: baseURL + path, requestHeaders: requestHeaders, responseHeaders: responseHeaders,
                                       extraHeaders: headers, rewrite: rewrite)
        return try await ReverseProxy(client: pools.data, deadline: Self.dataDeadline).forward(request, route, logger: logger) { _ in
            ServiceError(.unavailable, "host_unavailable", "the capsule's host agent is unreachable")
        }
    }

    /// Relays a client's WebSocket to the agent's socket at `path` until either side ends (the agent's close code and
    /// reason reach the client; an agent that cannot be reached is an error frame and close 4503).
    func relay(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, path: String, logger: Logger,
               onTraffic: @escaping @Sendable () async -> Void = {}) async {
        await WebSocketRelay.run(inbound: inbound, outbound: outbound,
                                 upstream: .init(url: webSocketURL(path), headers: webSocketHeaders, tls: tls, maxFrame: Self.maxFrame),
                                 logger: logger, onTraffic: onTraffic) { error in
            logger.debug("agent WebSocket failed", metadata: ["host": "\(hostID)", "path": "\(path)", "error": "\(error)"])
            return ServiceError(.unavailable, "host_unavailable", "the capsule's host agent is unreachable")
        }
    }

    /// Opens the agent's WebSocket at `path` for a caller of its own (a build's exec stream).
    func connectWebSocket(_ path: String, logger: Logger,
                          _ handler: @escaping WebSocketDataHandler<WebSocketClient.Context>) async throws -> WebSocketCloseFrame? {
        try await WebSocketClient.connect(url: webSocketURL(path),
                                          configuration: .init(maxFrameSize: Self.maxFrame, additionalHeaders: webSocketHeaders),
                                          tlsConfiguration: tls, logger: logger, handler: handler)
    }

    /// The largest WebSocket frame relayed.
    static let maxFrame = 16 << 20

    // MARK: Plumbing

    func request(_ method: HTTPMethod, _ path: String) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        return request
    }

    func call<T: Decodable>(_ method: HTTPMethod, _ path: String, body: (some Encodable)? = Optional<String>.none,
                            deadline: TimeAmount, as type: T.Type) async throws -> T {
        let data = try await send(method, path, body: body, deadline: deadline)
        do {
            return try WireCoding.makeDecoder().decode(T.self, from: data)
        } catch {
            throw ServiceError(.badGateway, "agent_error", "host agent sent an unreadable answer to \(method) \(path)")
        }
    }

    func callNoContent(_ method: HTTPMethod, _ path: String, deadline: TimeAmount) async throws {
        _ = try await send(method, path, body: Optional<String>.none, deadline: deadline)
    }

    func send(_ method: HTTPMethod, _ path: String, body: (some Encodable)?, deadline: TimeAmount) async throws -> Data {
        var request = request(method, path)
        if let body {
            let data = try WireCoding.makeEncoder().encode(body)
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: data))
        }
        let response: HTTPClientResponse
        do {
            response = try await pools.lifecycle.execute(request, timeout: deadline)
        } catch {
            throw ServiceError(.unavailable, "host_unavailable", "host agent \(hostID) is unreachable: \(error)")
        }
        let buffer = try await response.body.collect(upTo: 16 << 20)
        let data = Data(buffer: buffer)
        guard (200..<300).contains(response.status.code) else { throw Self.mapError(status: response.status.code, body: data, path: path) }
        return data
    }

    /// Maps an agent's error answer to the public error the caller should see.
    static func mapError(status: UInt, body: Data, path: String) -> ServiceError {
        let envelope = try? JSONDecoder().decode(ErrorEnvelope.self, from: body)
        let message = envelope?.error.message ?? "host agent answered HTTP \(status)"
        let code = envelope?.error.code ?? "agent_error"
        switch status {
        case 400: return ServiceError(.badRequest, code, message)
        case 404: return ServiceError(.notFound, code, message)
        case 409: return ServiceError(.conflict, code, message)
        case 413: return ServiceError(.tooLarge, code, message)
        case 503: return ServiceError(.unavailable, code, message)
        default: return ServiceError(.badGateway, "agent_error", "host agent failed \(path): \(message)")
        }
    }
}
