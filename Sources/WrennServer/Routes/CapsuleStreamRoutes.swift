import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWSClient
import HummingbirdWebSocket
import Logging
import NIOCore
import WrennWire

/// The capsule data plane over WebSocket: exec stream, background process stream, PTY. The upgrade is authorized
/// here (API key or session; 404 for another team's capsule, 409 unless running); then frames are piped unchanged
/// to the capsule's envd through its agent, in both directions, until either side closes.
///
/// Upgrades are always accepted; a stream that may not start gets one error frame and a close code of 4000 + the
/// HTTP status (4401, 4404, 4409, …). A plain GET (no upgrade) answers with the error envelope, or 400.
struct CapsuleStreamRoutes {
    let services: ControlPlaneServices
    var scope: CapsuleScope = .team
    static let maxMessage = 16 << 20
    /// public path suffix → envd path (`{selector}` substituted).
    static let streams: [(public: String, envd: String)] = [
        ("exec/stream", "/exec/stream"),
        ("pty", "/pty"),
        ("processes/:selector/stream", "/processes/{selector}/stream"),
    ]

    /// Registers the upgrade routes on `wsRouter` and their plain-HTTP twins on `router`.
    func register(on router: Router<WrennRequestContext>, webSocketRouter wsRouter: Router<WrennRequestContext>) {
        for stream in Self.streams {
            let path = RouterPath("\(scope.prefix)/\(stream.public)")
            // Every upgrade is accepted: a refused upgrade could only answer a bare 400, so failures are reported
            // inside the socket instead — one error frame, then a close with 4000 + the HTTP status (as the agent does).
            wsRouter.ws(path, onUpgrade: { inbound, outbound, wsContext in
                let context = wsContext.requestContext
                let request = wsContext.request
                let id: String, agent: AgentClient
                do {
                    (id, agent) = try await authorize(request, context)
                } catch {
                    await Self.refuse(outbound, error)
                    return
                }
                await services.capsules.touch(id)
                var envdPath = stream.envd
                if let selector = context.parameters.get("selector") {
                    envdPath = envdPath.replacingOccurrences(
                        of: "{selector}", with: selector.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
                }
                let query = request.uri.query.map { "?\($0)" } ?? ""
                let activity = StreamActivity(capsules: services.capsules, id: id)
                try await Self.pipe(inbound: inbound, outbound: outbound, agent: agent,
                                    path: "/v1/capsules/\(id)/envd\(envdPath)\(query)", logger: context.logger,
                                    onTraffic: { await activity.traffic() })
                await services.capsules.touch(id)
            })
            router.get(path) { request, context -> Response in
                _ = try await authorize(request, context)
                throw ServiceError.invalid("this endpoint needs a WebSocket upgrade (Connection: Upgrade, Upgrade: websocket)")
            }
        }
    }

    /// The capsule id and its agent, if the caller may stream from it now.
    func authorize(_ request: Request, _ context: WrennRequestContext) async throws -> (String, AgentClient) {
        let principal = try await scope.caller(request, context)
        let id = try context.parameters.require("id")
        let (_, agent) = try await services.capsules.requireRunning(principal, id: id)
        return (id, agent)
    }

    /// Pause before the first frame a server sends right after an upgrade: frames that arrive in the same read as
    /// the 101 can be lost by swift-websocket's client (see docs/agent.md, "first frames after a WebSocket upgrade").
    static let firstFrameDelay: Duration = .milliseconds(30)

    /// Reports why a stream cannot start: `{"type":"error","code","data","fatal":true}`, then close 4000 + status.
    static func refuse(_ outbound: WebSocketOutboundWriter, _ error: any Error) async {
        try? await Task.sleep(for: firstFrameDelay)
        let failure = (error as? ServiceError) ?? ServiceError(.internalError, "internal_error", "internal error")
        let status = APIErrorResponse.status(for: failure.kind).code
        struct ErrorFrame: Encodable { var type = "error"; var code: String; var data: String; var fatal = true }
        if let json = try? WireCoding.makeEncoder().encode(ErrorFrame(code: failure.code, data: failure.message)) {
            try? await outbound.write(.text(String(decoding: json, as: UTF8.self)))
        }
        try? await outbound.close(.init(codeNumber: 4000 + status), reason: failure.code)
    }

    /// Connects to the agent's WebSocket at `path` and copies messages both ways until one side ends; `onTraffic`
    /// runs before each message is passed on (it keeps `last_active_at` current, rate-limited by `StreamActivity`).
    static func pipe(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, agent: AgentClient, path: String,
                     logger: Logger, onTraffic: @escaping @Sendable () async -> Void = {}) async throws {
        do {
            try await WebSocketClient.connect(url: agent.webSocketURL(path),
                                              configuration: .init(maxFrameSize: maxMessage, additionalHeaders: agent.webSocketHeaders),
                                              tlsConfiguration: agent.tls, logger: logger) { upstreamInbound, upstreamOutbound, _ in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for try await message in inbound.messages(maxSize: maxMessage) {
                            await onTraffic()
                            try await upstreamOutbound.write(message.outbound)
                        }
                        try? await upstreamOutbound.close(.normalClosure, reason: nil)
                    }
                    group.addTask {
                        for try await message in upstreamInbound.messages(maxSize: maxMessage) {
                            await onTraffic()
                            try await outbound.write(message.outbound)
                        }
                    }
                    try await group.next()
                    group.cancelAll()
                }
            }
        } catch {
            logger.debug("capsule stream ended", metadata: ["error": "\(error)"])
        }
        try? await outbound.close(.normalClosure, reason: nil)
    }
}

extension WebSocketMessage {
    /// The same message, as a frame to send on.
    var outbound: WebSocketOutboundWriter.OutboundFrame {
        switch self {
        case .text(let text): .text(text)
        case .binary(let bytes): .binary(bytes)
        }
    }
}
