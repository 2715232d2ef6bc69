import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore

/// The HTTP/1 child channel of the control plane and the agent: any request of a keep-alive connection may upgrade to
/// WebSocket, not only the first one (Hummingbird's `.http1WebSocketUpgrade` answers a later upgrade with `307` +
/// close); a refused upgrade is answered with the router's own status and error envelope (``UpgradeRefusal``), not a
/// bare `400`; and a connection that has not sent a complete first request head within `firstRequestTimeout` is
/// closed (later requests fall under Hummingbird's idle timeout).
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
    let firstRequestTimeout: TimeAmount?

    init<WSResponder: HTTPResponder>(responder: @escaping HTTPChannelHandler.Responder, webSocketResponder: WSResponder,
                                     configuration: HTTP1WebSocketUpgradeChannel.Configuration, firstRequestTimeout: Duration?)
    where WSResponder.Context: WebSocketRequestContext {
        var http1 = configuration.http1
        let additional = http1.additionalChannelHandlers
        http1.additionalChannelHandlers = { additional() + [KeepAliveUpgradeDetector()] }
        self.segment = HTTP1WebSocketUpgradeChannel(responder: responder,
                                                    webSocketResponder: UpgradeRefusalRecorder(inner: webSocketResponder),
                                                    configuration: .init(http1: http1, ws: configuration.ws))
        self.firstRequestTimeout = firstRequestTimeout.map { TimeAmount($0) }
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let segment = self.segment
        let upgraded = channel.eventLoop.makePromise(of: HTTP1WebSocketUpgradeChannel.Value?.self)
        do {
            try channel.pipeline.syncOperations.addHandler(ConnectionSwitchHandler(upgraded: upgraded,
                                                                                   firstRequestTimeout: firstRequestTimeout) { channel in
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
    /// HTTP/1 where any request of a keep-alive connection may upgrade to a WebSocket route of `webSocketRouter`;
    /// refusals carry the router's answer when its context is a ``ConnectionContext``; a connection gets
    /// `firstRequestTimeout` to send its first request head.
    public static func http1KeepAliveWebSocket<WSResponderBuilder: HTTPResponderBuilder>(
        webSocketRouter: WSResponderBuilder,
        configuration: HTTP1WebSocketUpgradeChannel.Configuration = .init(),
        firstRequestTimeout: Duration? = nil
    ) -> HTTPServerBuilder where WSResponderBuilder.Responder.Context: WebSocketRequestContext {
        let webSocketResponder = webSocketRouter.buildResponder()
        return .init { responder in
            KeepAliveWebSocketChannel(responder: responder, webSocketResponder: webSocketResponder, configuration: configuration,
                                      firstRequestTimeout: firstRequestTimeout)
        }
    }
}

/// A request context that knows its connection, so a refused WebSocket upgrade can leave its answer there.
public protocol ConnectionContext: WebSocketRequestContext {
    var channel: any Channel { get }
}

/// The answer to a refused WebSocket upgrade: what the WebSocket router said (status, headers, error envelope).
struct UpgradeRefusal: Sendable {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    var body: ByteBuffer

    /// The largest refusal body kept (an error envelope is far smaller).
    static let maxBody = 64 << 10
}

/// Wraps the WebSocket router: every upgrade request counts as the connection's request (first-request deadline), and
/// a refusal (any answer but `200` from the router: `shouldUpgrade` said no, authorization failed, no such route) is
/// kept on the connection, where `KeepAliveUpgradeDetector` writes it instead of Hummingbird's bare `400`. Before the
/// upgrade, so the client sees a real status and the error envelope rather than `101` and a close frame.
struct UpgradeRefusalRecorder<Inner: HTTPResponder>: HTTPResponder where Inner.Context: WebSocketRequestContext {
    typealias Context = Inner.Context
    let inner: Inner

    func respond(to request: Request, context: Context) async throws -> Response {
        let response = try await inner.respond(to: request, context: context)
        guard let channel = (context as? any ConnectionContext)?.channel else { return response }
        var refusal: UpgradeRefusal?
        if response.status != .ok {
            let collector = BodyCollector(limit: UpgradeRefusal.maxBody)
            try? await response.body.write(collector)
            var headers = response.headers
            headers[.contentLength] = nil
            var body = collector.buffer
            if body.readableBytes == 0 {
                // `shouldUpgrade` said `.dontUpgrade` (an empty 405): still the envelope.
                body = ByteBuffer(bytes: JSONResponse.envelopeBytes(code: APIError.code(for: response.status),
                                                                   message: "this request cannot be upgraded to a WebSocket"))
                headers[.contentType] = JSONResponse.contentType
            }
            refusal = UpgradeRefusal(status: response.status, headers: headers, body: body)
        }
        try? await channel.eventLoop.submit { [refusal] in
            let handler = try channel.pipeline.syncOperations.handler(type: ConnectionSwitchHandler.self)
            handler.noteRequest()
            if let refusal { handler.refuse(refusal) }
        }.get()
        return response
    }
}

/// Collects a response body up to a limit (the rest is dropped).
final class BodyCollector: ResponseBodyWriter {
    private(set) var buffer = ByteBuffer()
    let limit: Int

    init(limit: Int) { self.limit = limit }

    func write(_ part: ByteBuffer) async throws {
        var part = part
        if let slice = part.readSlice(length: min(part.readableBytes, limit - buffer.readableBytes)) { buffer.writeImmutableBuffer(slice) }
    }

    func finish(_ trailingHeaders: HTTPFields?) async throws {}
}
