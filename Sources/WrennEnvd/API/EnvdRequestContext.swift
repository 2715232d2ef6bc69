import Foundation
import Hummingbird
import NIOCore
import WrennWire
import HummingbirdWebSocket

/// Request context of envd's routers (plain HTTP and WebSocket upgrades).
struct EnvdRequestContext: RequestContext, WebSocketRequestContext {
    var coreContext: CoreRequestContextStorage
    let webSocket: WebSocketHandlerReference<Self>
    /// Paces streamed writes on this connection (see `WriteSettling`).
    let settling: WriteSettling

    init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.webSocket = .init()
        self.settling = WriteSettling(eventLoop: source.channel.eventLoop)
    }

    /// JSON bodies up to 1 MiB (file contents never go through `collect`).
    var maxUploadSize: Int { 1 << 20 }

    /// Sorted keys, unescaped slashes: the encoder every Wrenn program answers with.
    var responseEncoder: JSONEncoder { WireCoding.makeEncoder() }
}

/// Makes a streaming producer wait for its writes to reach the channel.
///
/// Writes from outside the event loop are queued to it with `execute`, and the writer only learns that the
/// channel is full once those queued writes have run; a producer faster than the socket could pile up
/// hundreds of megabytes of queued buffers before that (measured: 390 MiB streaming 1 GiB). A round trip to
/// the event loop after each write lets the queued write run first, so back-pressure holds at one chunk.
struct WriteSettling: Sendable {
    let eventLoop: any EventLoop

    func settle() async throws {
        try await eventLoop.submit {}.get()
    }
}
