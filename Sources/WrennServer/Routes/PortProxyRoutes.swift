import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import WrennHTTP
import WrennWire

/// The capsule port proxy: HTTP and WebSocket traffic for `{port}-{capsule_id}.{domain}` (see ``PortProxyAddress``)
/// goes to that TCP port inside the capsule, through its host agent (`/v1/capsules/{id}/ports/{port}/…`), whatever
/// the path. Both bodies stream; nothing is collected.
///
/// Credentials: `X-API-Key` (what the SDK sends), or the ``PortProxyCookie`` a browser gets by opening the URL once
/// with `?wrenn_api_key=<key>`. Errors: no/invalid credential 401, unknown or another team's capsule 404, capsule
/// not running 409, port outside 1…65535 400 — all as the error envelope. Every proxied request and WebSocket
/// counts as activity (`last_active_at`; the agent's idle timer sees the traffic itself).
///
/// Headers by list (``HeaderPolicy/guestRequest``, ``HeaderPolicy/guestResponse``): no platform credential
/// (`X-API-Key`, the proxy and session cookies) reaches the capsule; the caller's `Authorization` travels as
/// `X-Wrenn-Forwarded-Authorization` (the agent's bearer token needs the header) and the agent restores it;
/// `X-Forwarded-Host` carries the public host. The app's `Set-Cookie`s reach the browser host-only and never under
/// the platform's cookie names (``SetCookieGuard``): a capsule app cannot set a cookie for the API's domain.
struct PortProxy: Sendable {
    let services: ControlPlaneServices
    let domain: String?
    let cookie: PortProxyCookie

    init(services: ControlPlaneServices) {
        self.services = services
        self.domain = PortProxyAddress.domain(services.config)
        self.cookie = PortProxyCookie(secret: services.config.secret)
    }

    /// Cookie names of the platform: never sent to a capsule app, never set by one.
    static let platformCookies: Set<String> = [PortProxyCookie.name, SessionCookies.sid, SessionCookies.csrf]

    /// The proxy target of `request`, nil when the request is for the API itself; 400 for a port out of range.
    func address(of request: Request) throws -> PortProxyAddress? {
        switch PortProxyAddress.match(host: request.head.authority, domain: domain) {
        case .none: return nil
        case .badPort: throw ServiceError.invalid("port must be 1–65535")
        case .target(let address): return address
        }
    }

    /// The caller, the capsule's agent, and — when the key came in the query — the cookie to set instead.
    func authorize(_ request: Request, _ address: PortProxyAddress) async throws -> (agent: AgentClient, setCookie: String?, principal: Principal) {
        let principal: Principal
        var setCookie: String?
        if let key = request.headers[.xAPIKey] {
            guard let found = try await services.apiKeys.authenticate(key: key) else { throw ServiceError.unauthorized("invalid API key") }
            principal = found
        } else if let key = request.uri.queryParameters.get(PortProxyCookie.queryParameter) {
            guard let found = try await services.apiKeys.authenticate(key: key), let team = found.teamID else {
                throw ServiceError.unauthorized("invalid API key")
            }
            principal = found
            setCookie = cookie.issue(team: team, for: address, now: services.clock.now())
        } else if let value = request.cookies[PortProxyCookie.name]?.value,
                  let team = cookie.verify(value, for: address, now: services.clock.now()) {
            principal = Principal(credential: .apiKey(id: "port-proxy-cookie", name: "port proxy cookie"), userID: nil, email: "",
                                  name: "port proxy cookie", isAdmin: false, teamID: team, role: nil)
        } else {
            throw ServiceError.unauthorized("authentication required: send X-API-Key (or open the URL once with ?\(PortProxyCookie.queryParameter)=)")
        }
        let (_, agent) = try await services.capsules.requireRunning(principal, id: address.capsuleID)
        return (agent, setCookie, principal)
    }

    /// One audit entry for a proxy session or socket of `principal` to `address`.
    func audit(_ principal: Principal, _ address: PortProxyAddress, _ action: String) async {
        await services.dataPlane.record(principal, team: principal.teamID ?? "", capsule: address.capsuleID, action: action,
                                        metadata: ["port": "\(address.port)"])
    }

    /// The agent path for the request target (path and query as received).
    static func agentPath(_ address: PortProxyAddress, target: String) -> String {
        "/v1/capsules/\(address.capsuleID)/ports/\(address.port)" + (target.hasPrefix("/") ? target : "/" + target)
    }

    /// `target` without the `wrenn_api_key` query item (the redirect after a browser's first visit).
    static func withoutKey(_ target: String) -> String {
        guard let question = target.firstIndex(of: "?") else { return target }
        let items = target[target.index(after: question)...].split(separator: "&")
            .filter { !$0.hasPrefix(PortProxyCookie.queryParameter + "=") && $0 != Substring(PortProxyCookie.queryParameter) }
        let path = String(target[..<question])
        return items.isEmpty ? path : path + "?" + items.joined(separator: "&")
    }

    /// The `Cookie` header minus the platform's cookies (nil when nothing is left).
    static func strippingProxyCookie(_ header: String) -> String? {
        let kept = header.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { cookie in !cookie.isEmpty && !platformCookies.contains { cookie.hasPrefix($0 + "=") } }
        return kept.isEmpty ? nil : kept.joined(separator: "; ")
    }

    /// Forwards one HTTP request and streams the answer back.
    func forward(_ request: Request, _ address: PortProxyAddress, agent: AgentClient, logger: Logger) async throws -> Response {
        // A key in the query never reaches the capsule's app.
        let target = Self.withoutKey(request.head.path ?? "/")
        var extra = HTTPFields()
        if let authorization = request.headers[.authorization] { extra[GuestHeaders.forwardedAuthorizationName] = authorization }
        for header in request.headers[values: .cookie] {
            if let kept = Self.strippingProxyCookie(header) { extra.append(HTTPField(name: .cookie, value: kept)) }
        }
        if let host = request.head.authority { extra[GuestHeaders.forwardedHost] = host }
        var policy = HeaderPolicy.guestRequest
        policy.denied.insert("cookie")
        let reserved = Set(Self.platformCookies.map { $0.lowercased() })
        return try await agent.forward(request, to: Self.agentPath(address, target: target), requestHeaders: policy,
                                       responseHeaders: .guestResponse, extraHeaders: extra,
                                       rewrite: { SetCookieGuard.apply(to: &$0, reservedNames: reserved) }, logger: logger)
    }
}

/// Header names shared with the agent's port proxy.
enum GuestHeaders {
    static let forwardedAuthorizationName = HTTPField.Name("X-Wrenn-Forwarded-Authorization")!
    static let forwardedHost = HTTPField.Name("X-Forwarded-Host")!
}

/// Sends requests whose `Host` names a capsule port to ``PortProxy``; everything else goes on to the API routes.
/// Sits after the error-envelope middleware and before authentication (the proxy authenticates on its own).
struct PortProxyMiddleware: RouterMiddleware {
    typealias Context = WrennRequestContext
    let proxy: PortProxy

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let address = try proxy.address(of: request) else { return try await next(request, context) }
        let (agent, setCookie, principal) = try await proxy.authorize(request, address)
        await proxy.services.capsules.touch(address.capsuleID)
        if let setCookie, request.method == .get || request.method == .head {
            // A browser's proxy session starts here: one audit entry for it (not one per request it makes).
            await proxy.audit(principal, address, "port_proxy.session")
            var response = Response(status: .seeOther, headers: [.location: PortProxy.withoutKey(request.head.path ?? "/")])
            response.setCookie(Cookie(name: PortProxyCookie.name, value: setCookie, maxAge: Int(PortProxyCookie.lifetime), path: "/",
                                      secure: proxy.services.config.secureCookies, httpOnly: true, sameSite: .lax))
            return response
        }
        return try await proxy.forward(request, address, agent: agent, logger: context.logger)
    }
}

/// The WebSocket half, on the upgrade router: an upgrade to a capsule-port host is authorized first — a refusal (bad
/// credential 401, unknown capsule 404, not running 409, bad port 400, the team's stream limit 429) is the HTTP
/// answer with the error envelope, before any upgrade — then accepted and relayed to the agent's
/// `/v1/capsules/{id}/ports/{port}/…` socket frame by frame. One audit entry per socket.
/// Subprotocol negotiation (`Sec-WebSocket-Protocol`) is not forwarded.
struct PortProxyWebSocketMiddleware: RouterMiddleware {
    typealias Context = WrennRequestContext
    let proxy: PortProxy

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let address = try proxy.address(of: request) else { return try await next(request, context) }
        let (agent, _, principal) = try await proxy.authorize(request, address)
        let permit = try proxy.services.dataPlane.streams.acquire(principal.teamID ?? "")
        let path = PortProxy.agentPath(address, target: PortProxy.withoutKey(request.head.path ?? "/"))
        let services = proxy.services, proxy = proxy
        return try await WebSocketUpgradeMiddleware<Context>(onUpgrade: { inbound, outbound, wsContext in
            defer { permit.release() }
            await proxy.audit(principal, address, "port_proxy.websocket")
            await services.capsules.touch(address.capsuleID)
            await agent.relay(inbound: inbound, outbound: outbound, path: path, logger: wsContext.logger)
            await services.capsules.touch(address.capsuleID)
        }).handle(request, context: context, next: next)
    }
}
