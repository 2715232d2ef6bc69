import Foundation
import Hummingbird
import WrennWire
import HummingbirdWebSocket

/// Request context of envd's routers (plain HTTP and WebSocket upgrades).
struct EnvdRequestContext: RequestContext, WebSocketRequestContext {
    var coreContext: CoreRequestContextStorage
    let webSocket: WebSocketHandlerReference<Self>

    init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.webSocket = .init()
    }

    /// JSON bodies up to 1 MiB (file contents never go through `collect`).
    var maxUploadSize: Int { 1 << 20 }

    /// Sorted keys, unescaped slashes: the encoder every Wrenn program answers with.
    var responseEncoder: JSONEncoder { WireCoding.makeEncoder() }
}
