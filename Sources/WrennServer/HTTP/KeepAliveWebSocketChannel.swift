import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore

/// The control plane's HTTP/1 child channel: any request of a keep-alive connection may upgrade to WebSocket,
/// not only the first one (Hummingbird's `.http1WebSocketUpgrade` answers a later upgrade with `307` + close).
///
/// Each connection starts as Hummingbird's `HTTP1WebSocketUpgradeChannel` (NIO's typed upgrade handler sees the
/// first request) behind a byte-level `ConnectionSwitchHandler`. When the first request is ordinary HTTP, a
/// `KeepAliveUpgradeDetector` sits in the HTTP pipeline; a later WebSocket upgrade request is held there and the
/// connection is re-armed: a second, fresh `HTTP1WebSocketUpgradeChannel` segment is set up behind the first, the
/// held request (re-encoded) and whatever the HTTP decoder had buffered are fed to it, and from then on the switch
/// routes the socket's bytes to that segment only. The upgrade itself (router match, authentication, handshake,
/// WebSocket handler) is Hummingbird's, unchanged.
struct KeepAliveWebSocketChannel: ServerChildChannel {
    struct Value: ServerChildChannelValue {
        /// The first segment: HTTP/1 with a WebSocket upgrade on its first request.
        let initial: HTTP1WebSocketUpgradeChannel.Value
        /// The segment a later upgrade request re-armed, or `nil` once the connection closed without one.
        let upgraded: EventLoopFuture<HTTP1WebSocketUpgradeChannel.Value?>
        var channel: any Channel { initial.channel }
    }

    let segment: HTTP1WebSocketUpgradeChannel

    init<WSResponder: HTTPResponder>(responder: @escaping HTTPChannelHandler.Responder, webSocketResponder: WSResponder,
                                     configuration: HTTP1WebSocketUpgradeChannel.Configuration)
    where WSResponder.Context: WebSocketRequestContext {
        var http1 = configuration.http1
        let additional = http1.additionalChannelHandlers
        http1.additionalChannelHandlers = { additional() + [KeepAliveUpgradeDetector()] }
        self.segment = HTTP1WebSocketUpgradeChannel(responder: responder, webSocketResponder: webSocketResponder,
                                                    configuration: .init(http1: http1, ws: configuration.ws))
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let segment = self.segment
        let upgraded = channel.eventLoop.makePromise(of: HTTP1WebSocketUpgradeChannel.Value?.self)
        do {
            try channel.pipeline.syncOperations.addHandler(ConnectionSwitchHandler(upgraded: upgraded) { channel in
                segment.setup(channel: channel, logger: logger)
            })
        } catch {
            upgraded.succeed(nil)
            return channel.eventLoop.makeFailedFuture(error)
        }
        return segment.setup(channel: channel, logger: logger).map { Value(initial: $0, upgraded: upgraded.futureResult) }
    }

    func handle(value: Value, logger: Logger) async {
        let segment = self.segment
        await withDiscardingTaskGroup { group in
            group.addTask { await segment.handle(value: value.initial, logger: logger) }
            group.addTask {
                guard let upgraded = try? await value.upgraded.get() else { return }
                await segment.handle(value: upgraded, logger: logger)
            }
        }
    }
}

extension HTTPServerBuilder {
    /// HTTP/1 where any request of a keep-alive connection may upgrade to a WebSocket route of `webSocketRouter`.
    static func http1KeepAliveWebSocket<WSResponderBuilder: HTTPResponderBuilder>(
        webSocketRouter: WSResponderBuilder,
        configuration: HTTP1WebSocketUpgradeChannel.Configuration = .init()
    ) -> HTTPServerBuilder where WSResponderBuilder.Responder.Context: WebSocketRequestContext {
        let webSocketResponder = webSocketRouter.buildResponder()
        return .init { responder in
            KeepAliveWebSocketChannel(responder: responder, webSocketResponder: webSocketResponder, configuration: configuration)
        }
    }
}
