import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import NIOCore
import NIOHTTP1
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
/// Headers to the capsule: hop-by-hop ones, `Host`, `X-API-Key` and the proxy cookie are dropped; the caller's
/// `Authorization` travels as `X-Wrenn-Forwarded-Authorization` (the agent's bearer token needs the header) and
/// the agent restores it; `X-Forwarded-Host` carries the public host.
struct PortProxy: Sendable {
    let services: ControlPlaneServices
    let domain: String?
    let cookie: PortProxyCookie

    init(services: ControlPlaneServices) {
        self.services = services
        self.domain = PortProxyAddress.domain(services.config)
        self.cookie = PortProxyCookie(secret: services.config.secret)
    }

    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer",
        "transfer-encoding", "upgrade",
    ]

    /// The proxy target of `request`, nil when the request is for the API itself; 400 for a port out of range.
    func address(of request: Request) throws -> PortProxyAddress? {
        switch PortProxyAddress.match(host: request.head.authority, domain: domain) {
        case .none: return nil
        case .badPort: throw ServiceError.invalid("port must be 1–65535")
        case .target(let address): return address
        }
    }

    /// The caller, the capsule's agent, and — when the key came in the query — the cookie to set instead.
    func authorize(_ request: Request, _ address: PortProxyAddress) async throws -> (agent: AgentClient, setCookie: String?) {
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
        return (agent, setCookie)
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

    /// The `Cookie` header minus the proxy cookie (nil when nothing is left).
    static func strippingProxyCookie(_ header: String) -> String? {
        let kept = header.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix(PortProxyCookie.name + "=") }
        return kept.isEmpty ? nil : kept.joined(separator: "; ")
    }

    /// Forwards one HTTP request and streams the answer back.
    func forward(_ request: Request, _ address: PortProxyAddress, agent: AgentClient) async throws -> Response {
        // A key in the query never reaches the capsule's app.
        let target = Self.withoutKey(request.head.path ?? "/")
        var upstream = agent.request(HTTPMethod(rawValue: request.method.rawValue), Self.agentPath(address, target: target))
        let connection = Set(request.headers[values: .connection].flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() })
        let dropped = Self.hopByHop.union(connection).union(["host", "x-api-key", "authorization", "cookie", "content-length",
                                                             GuestHeaders.forwardedAuthorization])
        for field in request.headers where !dropped.contains(field.name.canonicalName) {
            upstream.headers.add(name: field.name.rawName, value: field.value)
        }
        if let authorization = request.headers[.authorization] {
            upstream.headers.add(name: GuestHeaders.forwardedAuthorization, value: authorization)
        }
        for header in request.headers[values: .cookie] {
            if let kept = Self.strippingProxyCookie(header) { upstream.headers.add(name: "Cookie", value: kept) }
        }
        if let host = request.head.authority { upstream.headers.add(name: "X-Forwarded-Host", value: host) }
        if let length = request.headers[.contentLength].flatMap(Int64.init) {
            if length > 0 { upstream.body = .stream(request.body, length: .known(length)) }
        } else if request.headers[.transferEncoding] != nil {
            upstream.body = .stream(request.body, length: .unknown)
        }
        let response: HTTPClientResponse
        do {
            response = try await agent.http.execute(upstream, timeout: CapsuleDataRoutes.deadline)
        } catch {
            throw ServiceError(.unavailable, "host_unavailable", "the capsule's host agent is unreachable")
        }
        var headers = HTTPFields()
        let droppedBack = Self.hopByHop.union(Set(response.headers["connection"].flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }))
        for (name, value) in response.headers where !droppedBack.contains(name.lowercased()) {
            if let field = HTTPField.Name(name) { headers.append(HTTPField(name: field, value: value)) }
        }
        let status = HTTPResponse.Status(code: Int(response.status.code), reasonPhrase: response.status.reasonPhrase)
        if request.method == .head { return Response(status: status, headers: headers, body: ResponseBody()) }
        return Response(status: status, headers: headers, body: ResponseBody(asyncSequence: response.body))
    }
}

/// Header names shared with the agent's port proxy.
enum GuestHeaders {
    static let forwardedAuthorization = "x-wrenn-forwarded-authorization"
}

/// Sends requests whose `Host` names a capsule port to ``PortProxy``; everything else goes on to the API routes.
/// Sits after the error-envelope middleware and before authentication (the proxy authenticates on its own).
struct PortProxyMiddleware: RouterMiddleware {
    typealias Context = WrennRequestContext
    let proxy: PortProxy

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let address = try proxy.address(of: request) else { return try await next(request, context) }
        let (agent, setCookie) = try await proxy.authorize(request, address)
        await proxy.services.capsules.touch(address.capsuleID)
        if let setCookie, request.method == .get || request.method == .head {
            var response = Response(status: .seeOther, headers: [.location: PortProxy.withoutKey(request.head.path ?? "/")])
            response.setCookie(Cookie(name: PortProxyCookie.name, value: setCookie, maxAge: Int(PortProxyCookie.lifetime), path: "/",
                                      secure: proxy.services.config.secureCookies, httpOnly: true, sameSite: .lax))
            return response
        }
        return try await proxy.forward(request, address, agent: agent)
    }
}

/// The WebSocket half, on the upgrade router: an upgrade to a capsule-port host is accepted and piped to the agent's
/// `/v1/capsules/{id}/ports/{port}/…` socket message by message. As with the capsule streams, a refused upgrade could
/// only be a bare 400, so refusals (bad credential, capsule not running, bad port, …) are reported inside the socket:
/// one `{"type":"error",…}` frame, then close code 4000 + the HTTP status (4401, 4404, 4409, 4400).
/// Subprotocol negotiation (`Sec-WebSocket-Protocol`) is not forwarded.
struct PortProxyWebSocketMiddleware: RouterMiddleware {
    typealias Context = WrennRequestContext
    let proxy: PortProxy

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let target: (address: PortProxyAddress, agent: AgentClient)
        do {
            guard let address = try proxy.address(of: request) else { return try await next(request, context) }
            target = (address, try await proxy.authorize(request, address).agent)
        } catch {
            return try await WebSocketUpgradeMiddleware<Context>(onUpgrade: { _, outbound, _ in
                await CapsuleStreamRoutes.refuse(outbound, error)
            }).handle(request, context: context, next: next)
        }
        let path = PortProxy.agentPath(target.address, target: PortProxy.withoutKey(request.head.path ?? "/"))
        let services = proxy.services
        return try await WebSocketUpgradeMiddleware<Context>(onUpgrade: { inbound, outbound, wsContext in
            await services.capsules.touch(target.address.capsuleID)
            try await CapsuleStreamRoutes.pipe(inbound: inbound, outbound: outbound, agent: target.agent, path: path,
                                               logger: wsContext.logger)
            await services.capsules.touch(target.address.capsuleID)
        }).handle(request, context: context, next: next)
    }
}
