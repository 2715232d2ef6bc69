import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWSClient
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOSSL
import NIOWebSocket
import WrennHTTP
import WrennWire

/// The one WebSocket relay of every hop (control plane → agent for capsule streams and the port proxy; agent → envd
/// and agent → guest ports): opens its own WebSocket to the upstream and copies frames both ways as they come — text,
/// binary and continuation frames keep their fragmentation, nothing is reassembled or re-encoded — until either side
/// ends. The upstream's close code and reason reach the client; when the client leaves, the upstream is closed
/// normally. No frame is buffered beyond the one being passed on (back-pressure is the sockets').
public enum WebSocketRelay {
    /// Where to connect and how.
    public struct Upstream: Sendable {
        public var url: String
        public var headers: HTTPFields
        public var tls: TLSConfiguration?
        public var maxFrame: Int

        public init(url: String, headers: HTTPFields = [:], tls: TLSConfiguration? = nil, maxFrame: Int) {
            self.url = url
            self.headers = headers
            self.tls = tls
            self.maxFrame = maxFrame
        }
    }

    /// Relays until one side ends. `onTraffic` runs for each frame passed on (activity); when the upstream cannot be
    /// reached or fails, `failure` names the error the client is told (``fail(_:_:)``).
    public static func run(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, upstream: Upstream, logger: Logger,
                           onTraffic: @escaping @Sendable () async -> Void = {},
                           failure: (any Error) -> any EnvelopeError) async {
        let client = WebSocketClient(
            url: upstream.url,
            configuration: .init(maxFrameSize: upstream.maxFrame, additionalHeaders: upstream.headers, closeTimeout: .seconds(5),
                                 autoPing: .disabled),
            tlsConfiguration: upstream.tls,
            logger: logger
        ) { upstreamInbound, upstreamOutbound, _ in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for try await frame in inbound {
                        await onTraffic()
                        try await upstreamOutbound.write(.custom(Self.frame(frame)))
                    }
                }
                group.addTask {
                    for try await frame in upstreamInbound {
                        await onTraffic()
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
            await fail(outbound, failure(error))
            return
        }
        if let close {
            try? await outbound.close(close.closeCode, reason: close.reason)
        }
    }

    /// A stream that cannot go on after the upgrade: one `{"type":"error","code","data","fatal":true}` frame, then a
    /// close with 4000 + the HTTP status the plain route would have answered, and the code as reason.
    public static func fail(_ outbound: WebSocketOutboundWriter, _ error: any EnvelopeError) async {
        // swift-websocket's client can lose frames that arrive in the same read as the 101 (docs/agent.md).
        try? await Task.sleep(for: firstFrameDelay)
        struct ErrorFrame: Encodable { var type = "error"; var code: String; var data: String; var fatal = true }
        if let json = try? WireCoding.makeEncoder().encode(ErrorFrame(code: error.code, data: error.message)) {
            try? await outbound.write(.text(String(decoding: json, as: UTF8.self)))
        }
        try? await outbound.close(.init(codeNumber: 4000 + error.status.code), reason: error.code)
    }

    /// Pause before the first frame a server sends right after an upgrade (see ``fail(_:_:)``).
    public static let firstFrameDelay: Duration = .milliseconds(30)

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
