import Foundation
import Hummingbird
import HummingbirdWebSocket
import NIOCore
import WrennHTTP
import WrennWire

/// Request context of the agent's routers (plain HTTP and WebSocket upgrades).
public struct AgentRequestContext: RequestContext, WebSocketRequestContext, ConnectionContext {
    /// Hummingbird's storage.
    public var coreContext: CoreRequestContextStorage
    /// Set by the WebSocket router when a route accepts an upgrade.
    public let webSocket: WebSocketHandlerReference<Self>
    /// The connection (a refused upgrade leaves its answer there).
    public let channel: any Channel

    /// Creates a context for one request.
    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.webSocket = .init()
        self.channel = source.channel
    }

    /// JSON bodies of the agent API are small; proxied bodies stream and never go through `collect`.
    public var maxUploadSize: Int { 1 << 20 }

    /// RFC 3339 dates, the coder every Wrenn hop uses.
    public var requestDecoder: JSONDecoder { WireCoding.makeDecoder() }

    /// Sorted keys, RFC 3339 dates.
    public var responseEncoder: JSONEncoder { WireCoding.makeEncoder() }
}
