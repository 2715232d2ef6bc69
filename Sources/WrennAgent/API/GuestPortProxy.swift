import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import WrennHTTP
import WrennProxy

/// `ANY /v1/capsules/{id}/ports/{port}/{path…}`: HTTP and WebSocket traffic to a TCP port of a running capsule (the
/// control plane's port proxy, `{port}-{id}.{domain}`, lands here). The guest is reached at the capsule's address —
/// the namespace end of its slot, which DNATs every port to the guest (`NetworkPlan`) — or at whatever host the
/// runtime reports for envd (`127.0.0.1` in `EnvdBackedRuntime`).
///
/// The edge's ``ReverseProxy`` and ``WebSocketRelay`` with the guest-app header lists (``HeaderPolicy/guestRequest``,
/// ``HeaderPolicy/guestResponse``): no platform credential reaches the app; the caller's own `Authorization` — which
/// the control plane must move aside because the agent's bearer token occupies that header — arrives as
/// `X-Wrenn-Forwarded-Authorization` and is restored for the guest. Every request and every frame counts as activity
/// for the idle timer. Port outside 1…65535 400, unknown capsule 404, not running 409 (before any upgrade); a port
/// nothing listens on is 502 `unavailable`.
struct GuestPortProxy: Sendable {
    let services: AgentServices

    static let forwardedAuthorization = HTTPField.Name("X-Wrenn-Forwarded-Authorization")!
    static let paths: [RouterPath] = ["/v1/capsules/:id/ports/:port", "/v1/capsules/:id/ports/:port/**"]

    func register(on router: Router<AgentRequestContext>) {
        for method in EnvdProxy.methods {
            for path in Self.paths {
                router.on(path, method: method) { request, context in try await forward(request, context: context) }
            }
        }
    }

    func registerWebSocket(on router: Router<AgentRequestContext>) {
        for path in Self.paths {
            router.ws(path, shouldUpgrade: { request, context in
                _ = try await upstream(request, context, scheme: "ws")
                return .upgrade([:])
            }, onUpgrade: { inbound, outbound, context in
                let id = context.requestContext.parameters.get("id") ?? ""
                await EnvdWebSocketProxy(services: services).relay(inbound: inbound, outbound: outbound, id: id, logger: context.logger,
                                                                   what: "guest port WebSocket") {
                    try await upstream(context.request, context.requestContext, scheme: "ws")
                }
            })
        }
    }

    static func port(_ context: AgentRequestContext) throws -> Int {
        guard let port = context.parameters.get("port").flatMap(Int.init), (1...65535).contains(port) else {
            throw AgentError.invalid("port must be 1–65535")
        }
        return port
    }

    /// The guest URL for `request` (409 unless running) and the headers the agent adds: the caller's own
    /// `Authorization`, restored.
    func upstream(_ request: Request, _ context: AgentRequestContext, scheme: String) async throws -> (url: String, headers: HTTPFields) {
        let id = try context.parameters.require("id")
        let port = try Self.port(context)
        let host = try await services.envdTarget(id).host
        let path = try EnvdProxy.target(of: request, after: "/v1/capsules/\(id)/ports/\(port)")
        var headers = HTTPFields()
        if let authorization = request.headers[Self.forwardedAuthorization] { headers[.authorization] = authorization }
        return ("\(scheme)://\(EnvdProxy.hostPort(host, port))\(path)", headers)
    }

    func forward(_ request: Request, context: AgentRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        let (url, headers) = try await upstream(request, context, scheme: "http")
        let route = ReverseProxy.Route(url: url, requestHeaders: .guestRequest, responseHeaders: .guestResponse, extraHeaders: headers)
        return try await services.proxy.forward(request, route, observer: services.activity.begin(id), logger: context.logger) { error in
            AgentError.badGateway("capsule \(id) port unreachable: \(error)")
        }
    }
}
