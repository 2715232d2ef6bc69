import Foundation
import HTTPTypes
import Hummingbird
import WrennHTTP
import WrennProxy

/// `ANY /v1/capsules/{id}/envd/{path…}` over plain HTTP: the request (method, path and query as received, body) goes
/// to the capsule's envd through the edge's ``ReverseProxy`` and the answer streams back. Neither body is ever
/// collected, so a 1 GiB upload or download costs a few 64 KiB buffers.
///
/// Headers by list (``HeaderPolicy/envdRequest`` / ``HeaderPolicy/envdResponse``): the caller's content type goes to
/// envd with envd's own bearer token; envd's content type and disposition come back — nothing else a guest sends
/// reaches the control plane, which decides the public answer's headers itself. The request counts as activity for
/// the idle timer from its start until the last response byte went out.
struct EnvdProxy: Sendable {
    let services: AgentServices

    static let methods: [HTTPRequest.Method] = [.get, .post, .put, .delete, .patch, .head, .options]

    func register(on router: Router<AgentRequestContext>) {
        for method in Self.methods {
            router.on("/v1/capsules/:id/envd/**", method: method) { request, context in
                try await forward(request, context: context)
            }
        }
    }

    /// The part of the request target after `prefix` (`/v1/capsules/{id}/envd`), query included, exactly as received.
    static func target(of request: Request, after prefix: String) throws -> String {
        let raw = request.head.path ?? request.uri.string
        guard raw.hasPrefix(prefix) else { throw AgentError.invalid("malformed proxy path") }
        let rest = raw.dropFirst(prefix.count)
        if rest.isEmpty || rest.hasPrefix("?") { return "/" + rest }
        return String(rest)
    }

    static func envdTarget(of request: Request, id: String) throws -> String {
        try target(of: request, after: "/v1/capsules/\(id)/envd")
    }

    func forward(_ request: Request, context: AgentRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        let target = try await services.envdTarget(id)
        let path = try Self.envdTarget(of: request, id: id)
        let route = ReverseProxy.Route(url: "http://\(Self.hostPort(target.host, target.port))\(path)",
                                       requestHeaders: .envdRequest, responseHeaders: .envdResponse,
                                       extraHeaders: [.authorization: "Bearer \(target.token)"])
        return try await services.proxy.forward(request, route, observer: services.activity.begin(id), logger: context.logger) { error in
            context.logger.warning("envd proxy failed", metadata: ["id": "\(id)", "path": "\(path)", "error": "\(error)"])
            return AgentError.badGateway("capsule \(id) envd unreachable: \(error)")
        }
    }

    static func hostPort(_ host: String, _ port: Int) -> String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

extension ActivityLease: ProxyObserver {
    public func traffic() { touch() }
    public func finished() { release() }
}

extension AgentServices {
    /// The proxy to envd and guest ports: envd's client, the response head due within `envdResponseTimeout`.
    var proxy: ReverseProxy { ReverseProxy(client: client, deadline: configuration.envdResponseTimeout) }
}
