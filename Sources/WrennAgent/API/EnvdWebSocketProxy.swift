import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWSClient
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket

/// `GET /v1/capsules/{id}/envd/{path…}` with a WebSocket upgrade (envd's `/exec/stream`,
/// `/processes/{sel}/stream`, `/pty`): the agent accepts the socket, opens its own to envd with the capsule's
/// token, and copies frames both ways as they come (fragments stay fragments, nothing is reassembled or
/// re-encoded) until either side closes; envd's close code and reason are passed on to the caller.
///
/// Auth and state are checked before the upgrade (a refused upgrade falls through to the HTTP route, which
/// answers the 401/404/409 envelope). If envd cannot be reached after the upgrade, the caller gets one
/// `{"type":"error","data":…,"fatal":true}` frame and close code 1011. An open socket counts as activity.
struct EnvdWebSocketProxy: Sendable {
    let services: AgentServices

    func register(on router: Router<AgentRequestContext>) {
        router.ws(
            "/v1/capsules/:id/envd/**",
            shouldUpgrade: { _, context in
                let id = try context.parameters.require("id")
                _ = try await services.envdTarget(id)
                return .upgrade([:])
            },
            onUpgrade: { inbound, outbound, context in
                try await pipe(inbound: inbound, outbound: outbound, context: context)
            }
        )
    }

    func pipe(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter,
              context: WebSocketRouterContext<AgentRequestContext>) async throws {
        let id = context.requestContext.parameters.get("id") ?? ""
        let logger = context.logger
        let lease = services.activity.begin(id)
        defer { lease.release() }
        let url: String
        var headers = HTTPFields()
        do {
            let target = try await services.envdTarget(id)
            url = "ws://\(EnvdProxy.hostPort(target.host, target.port))\(try EnvdProxy.envdTarget(of: context.request, id: id))"
            headers[.authorization] = "Bearer \(target.token)"
        } catch {
            try await fail(outbound, "\(error)")
            return
        }
        let client = WebSocketClient(
            url: url,
            configuration: .init(
                maxFrameSize: services.configuration.maxWebSocketFrame, additionalHeaders: headers,
                closeTimeout: .seconds(5), autoPing: .disabled),
            logger: logger
        ) { envdInbound, envdOutbound, _ in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for try await frame in inbound {
                        lease.touch()
                        try await envdOutbound.write(.custom(Self.frame(frame)))
                    }
                }
                group.addTask {
                    for try await frame in envdInbound {
                        lease.touch()
                        try await outbound.write(.custom(Self.frame(frame)))
                    }
                }
                _ = try await group.next()
                group.cancelAll()
            }
        }
        let close: WebSocketCloseFrame?
        do {
            close = try await client.run()
        } catch {
            logger.warning("envd WebSocket proxy failed", metadata: ["id": "\(id)", "url": "\(url)", "error": "\(error)"])
            try? await fail(outbound, "envd WebSocket failed: \(error)")
            return
        }
        if let close, close.closeCode != .normalClosure {
            try? await outbound.close(close.closeCode, reason: close.reason)
        }
    }

    private func fail(_ outbound: WebSocketOutboundWriter, _ message: String) async throws {
        struct ErrorFrame: Encodable { var type = "error"; var data: String; var fatal = true }
        let text = String(decoding: try JSONEncoder().encode(ErrorFrame(data: message)), as: UTF8.self)
        try? await outbound.write(.text(text))
        try? await outbound.close(.unexpectedServerError, reason: nil)
    }

    static func frame(_ frame: WebSocketDataFrame) -> WebSocketFrame {
        let opcode: WebSocketOpcode
        switch frame.opcode {
        case .text: opcode = .text
        case .binary: opcode = .binary
        case .continuation: opcode = .continuation
        }
        return WebSocketFrame(fin: frame.fin, opcode: opcode, data: frame.data)
    }
}
