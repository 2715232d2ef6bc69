import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import WrennHTTP
import WrennProxy

/// `GET /v1/capsules/{id}/envd/{path…}` with a WebSocket upgrade (envd's `/exec/stream`, `/processes/{sel}/stream`,
/// `/pty`): the agent checks the capsule before the upgrade — an unknown capsule is a `404`, one that is not running a
/// `409`, with the error envelope, and no socket — then relays frames to envd's own socket (capsule token) with the
/// edge's ``WebSocketRelay`` until either side closes; envd's close code and reason reach the caller. If envd cannot
/// be reached after the upgrade, the caller gets an error frame and close 4502. An open socket counts as activity.
struct EnvdWebSocketProxy: Sendable {
    let services: AgentServices

    func register(on router: Router<AgentRequestContext>) {
        router.ws(
            "/v1/capsules/:id/envd/**",
            shouldUpgrade: { request, context in
                let id = try context.parameters.require("id")
                _ = try await services.envdTarget(id)
                _ = try EnvdProxy.envdTarget(of: request, id: id)
                return .upgrade([:])
            },
            onUpgrade: { inbound, outbound, context in
                let id = context.requestContext.parameters.get("id") ?? ""
                await relay(inbound: inbound, outbound: outbound, id: id, logger: context.logger, what: "envd WebSocket") {
                    let target = try await services.envdTarget(id)
                    let path = try EnvdProxy.envdTarget(of: context.request, id: id)
                    return (url: "ws://\(EnvdProxy.hostPort(target.host, target.port))\(path)",
                            headers: [.authorization: "Bearer \(target.token)"])
                }
            }
        )
    }

    /// Relays to the upstream `resolve` names (envd or a guest port), holding an activity lease; a capsule that stopped
    /// running between the upgrade and now is reported on the socket.
    func relay(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, id: String, logger: Logger, what: String,
               _ resolve: () async throws -> (url: String, headers: HTTPFields)) async {
        let lease = services.activity.begin(id)
        defer { lease.release() }
        let upstream: (url: String, headers: HTTPFields)
        do {
            upstream = try await resolve()
        } catch {
            await WebSocketRelay.fail(outbound, ErrorEnvelopeMiddleware<AgentRequestContext>.envelope(
                for: error, logger: logger, translate: AgentError.translate))
            return
        }
        await WebSocketRelay.run(inbound: inbound, outbound: outbound,
                                 upstream: .init(url: upstream.url, headers: upstream.headers, maxFrame: services.configuration.maxWebSocketFrame),
                                 logger: logger, onTraffic: { lease.touch() }) { error in
            logger.debug("\(what) proxy failed", metadata: ["id": "\(id)", "url": "\(upstream.url)", "error": "\(error)"])
            return AgentError.badGateway("capsule \(id) \(what) failed: \(error)")
        }
    }
}
