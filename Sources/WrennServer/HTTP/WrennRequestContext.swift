import Foundation
import Hummingbird
import HummingbirdWebSocket
import NIOCore
import WrennHTTP
import WrennWire

/// Per-request state of the control plane's router: who is calling (set by `AuthenticationMiddleware`) and from where.
public struct WrennRequestContext: RequestContext, WebSocketRequestContext, ConnectionContext {
    public var coreContext: CoreRequestContextStorage
    /// The authenticated caller, if any credential was presented and valid.
    public var principal: Principal?
    /// The peer's IP address, for session records.
    public let remoteAddress: String
    /// Set when a route accepts a WebSocket upgrade.
    public let webSocket: WebSocketHandlerReference<WrennRequestContext>
    /// The connection (a refused upgrade leaves its answer there).
    public let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.principal = nil
        self.remoteAddress = source.channel.remoteAddress?.ipAddress ?? ""
        self.webSocket = .init()
        self.channel = source.channel
    }

    /// JSON bodies of up to 1 MiB are decoded; larger bodies are 413.
    public var maxUploadSize: Int { 1 << 20 }

    public var responseEncoder: JSONEncoder { WireCoding.makeEncoder() }
    public var requestDecoder: JSONDecoder { WireCoding.makeDecoder() }
}
