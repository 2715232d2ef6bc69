import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import WrennWire

/// The capsule data plane over WebSocket: exec stream, background process stream, PTY. The upgrade is decided
/// before it happens: the caller (API key, or a session whose `Origin` is allowed), the capsule (404 for another
/// team's, 409 unless running) and the team's stream limit (429) are checked, and a refusal is the HTTP answer with
/// the error envelope — no socket. Then frames are relayed unchanged to the capsule's envd through its agent
/// (`AgentClient.relay`), both ways, until either side closes; the agent's (envd's) close code and reason reach the
/// client. One audit entry per stream. A plain GET (no upgrade) answers with the error envelope, or 400.
struct CapsuleStreamRoutes {
    let services: ControlPlaneServices
    var scope: CapsuleScope = .team
    /// public path suffix → envd path (`{selector}` substituted) and the audit action.
    static let streams: [(public: String, envd: String, action: String)] = [
        ("exec/stream", "/exec/stream", "exec.stream"),
        ("pty", "/pty", "pty"),
        ("processes/:selector/stream", "/processes/{selector}/stream", "process.stream"),
    ]

    /// Registers the upgrade routes on `wsRouter` and their plain-HTTP twins on `router`.
    func register(on router: Router<WrennRequestContext>, webSocketRouter wsRouter: Router<WrennRequestContext>) {
        for stream in Self.streams {
            let path = RouterPath("\(scope.prefix)/\(stream.public)")
            wsRouter.get(path) { request, context -> Response in
                let principal = try await scope.caller(request, context)
                let id = try context.parameters.require("id")
                var envdPath = stream.envd
                var metadata: [String: String] = [:]
                if context.parameters.get("selector") != nil {
                    let selector = try CapsuleDataRoutes.selector(context)
                    envdPath = envdPath.replacingOccurrences(of: "{selector}", with: CapsuleDataRoutes.encode(selector))
                    metadata["selector"] = selector
                }
                let (agent, permit) = try await services.dataPlane.begin(principal, capsule: id, action: stream.action, kind: .stream,
                                                                         metadata: metadata)
                let upstream = "/v1/capsules/\(id)/envd\(envdPath)" + (request.uri.query.map { "?\($0)" } ?? "")
                let services = services
                return try await WebSocketUpgradeMiddleware<WrennRequestContext>(onUpgrade: { inbound, outbound, wsContext in
                    defer { permit.release() }
                    await services.capsules.touch(id)
                    let activity = StreamActivity(capsules: services.capsules, id: id)
                    await agent.relay(inbound: inbound, outbound: outbound, path: upstream,
                                      logger: wsContext.logger, onTraffic: { await activity.traffic() })
                    await services.capsules.touch(id)
                }).handle(request, context: context) { _, _ in Response(status: .ok) }
            }
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
}
