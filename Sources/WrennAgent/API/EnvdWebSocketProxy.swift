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
/// Auth is checked before the upgrade; a caller without the agent token never gets a socket (Hummingbird answers a
/// refused upgrade with a bare 400). Capsule errors cannot be HTTP statuses on an upgrade path, so — like the
/// original's WebSocket variants — the socket is accepted and gets one
/// `{"type":"error","code":"invalid_state"|"not_found"|…,"data":message,"fatal":true}` frame, then a close with
/// code 4000 + the HTTP status the plain route would have used (4404, 4409, 4502 when envd cannot be reached).
/// An open socket counts as activity for the idle timer.
struct EnvdWebSocketProxy: Sendable {
    let services: AgentServices

    func register(on router: Router<AgentRequestContext>) {
        router.ws(
            "/v1/capsules/:id/envd/**",
            shouldUpgrade: { _, context in
                _ = try context.parameters.require("id")
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
        guard let (url, headers) = try await Self.upstream(outbound, {
            let target = try await services.envdTarget(id)
            var headers = HTTPFields()
            headers[.authorization] = "Bearer \(target.token)"
            return ("ws://\(EnvdProxy.hostPort(target.host, target.port))\(try EnvdProxy.envdTarget(of: context.request, id: id))", headers)
        }) else { return }
        await Self.relay(inbound: inbound, outbound: outbound, url: url, headers: headers,
                         maxFrame: services.configuration.maxWebSocketFrame, lease: lease, logger: logger) { error in
            logger.warning("envd WebSocket proxy failed", metadata: ["id": "\(id)", "url": "\(url)", "error": "\(error)"])
            return .badGateway("capsule \(id) envd WebSocket failed: \(error)")
        }
    }

    /// The upstream URL and headers from `resolve`; when it fails with an agent or runtime error (unknown capsule,
    /// not running, bad path), that error goes to the client as the error frame and close, and the result is nil.
    static func upstream(_ outbound: WebSocketOutboundWriter,
                         _ resolve: () async throws -> (String, HTTPFields)) async throws -> (String, HTTPFields)? {
        do {
            return try await resolve()
        } catch let error as AgentError {
            await fail(outbound, error)
        } catch let error as RuntimeError {
            await fail(outbound, AgentError(error))
        }
        return nil
    }

    /// Opens a WebSocket to `url` (envd, or a port of the guest) and copies frames both ways as they come until
    /// either side ends, touching `lease` on traffic; the upstream's close code and reason are passed on. When the
    /// upstream cannot be reached, `failure` names the error frame sent before closing.
    static func relay(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, url: String, headers: HTTPFields,
                      maxFrame: Int, lease: ActivityLease, logger: Logger, failure: (any Error) -> AgentError) async {
        let client = WebSocketClient(
            url: url,
            configuration: .init(maxFrameSize: maxFrame, additionalHeaders: headers, closeTimeout: .seconds(5), autoPing: .disabled),
            logger: logger
        ) { upstreamInbound, upstreamOutbound, _ in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for try await frame in inbound {
                        lease.touch()
                        try await upstreamOutbound.write(.custom(Self.frame(frame)))
                    }
                }
                group.addTask {
                    for try await frame in upstreamInbound {
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
            await Self.fail(outbound, failure(error))
            return
        }
        if let close, close.closeCode != .normalClosure {
            try? await outbound.close(close.closeCode, reason: close.reason)
        }
    }

    /// Sends the error frame and closes with 4000 + the HTTP status.
    static func fail(_ outbound: WebSocketOutboundWriter, _ error: AgentError) async {
        struct ErrorFrame: Encodable { var type = "error"; var code: String; var data: String; var fatal = true }
        if let data = try? JSONEncoder().encode(ErrorFrame(code: error.code, data: error.message)) {
            try? await outbound.write(.text(String(decoding: data, as: UTF8.self)))
        }
        try? await outbound.close(.init(codeNumber: 4000 + error.status.code), reason: error.code)
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
