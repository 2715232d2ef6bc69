import Foundation
import HTTPTypes
import Hummingbird

/// Cross-site WebSocket hijacking: a browser sends the session cookie with a WebSocket upgrade whatever page opened
/// it, and WebSockets are not subject to CORS. So a cookie-authenticated upgrade must come from an allowed `Origin`:
/// the public URL's, the dashboard's (`frontendURL`) and `EdgeSettings.allowedOrigins` (`WRENN_ALLOWED_ORIGINS`).
/// A browser always sends `Origin` on a WebSocket handshake — the page's `http(s)` origin, or `null` — and a page
/// cannot remove or forge it; clients with an API key are not affected, nor are cookie clients that are no browser:
/// those that send no `Origin`, or a `ws(s)://` one (swift-websocket's client names the socket's own URL), which no
/// browser sends.
struct OriginCheckMiddleware: RouterMiddleware {
    typealias Context = WrennRequestContext
    let allowed: Set<String>

    init(config: ServerConfig) {
        allowed = Set(([config.publicURL, config.frontendURL] + config.edge.allowedOrigins).compactMap(Self.origin))
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if case .session = context.principal?.credential, let origin = request.headers[.origin], Self.isFromBrowser(origin) {
            guard let normalized = Self.origin(origin), allowed.contains(normalized) else {
                throw ServiceError.forbidden("a signed-in session may open this stream only from the dashboard: origin \(origin) is not allowed")
            }
        }
        return try await next(request, context)
    }

    /// Whether `origin` can be a browser's: anything but a `ws://` or `wss://` origin.
    static func isFromBrowser(_ origin: String) -> Bool {
        let lowered = origin.trimmingCharacters(in: .whitespaces).lowercased()
        return !(lowered.hasPrefix("ws://") || lowered.hasPrefix("wss://"))
    }

    /// `scheme://host[:port]` in lowercase without a default port, or nil when `text` is no http(s) origin (`null`).
    static func origin(_ text: String) -> String? {
        guard let url = URL(string: text.trimmingCharacters(in: .whitespaces)), let scheme = url.scheme?.lowercased(),
              scheme == "http" || scheme == "https", let host = url.host?.lowercased(), !host.isEmpty else { return nil }
        let defaultPort = scheme == "https" ? 443 : 80
        let port = url.port.flatMap { $0 == defaultPort ? nil : $0 }
        let bracketed = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        return "\(scheme)://\(bracketed)" + (port.map { ":\($0)" } ?? "")
    }
}
