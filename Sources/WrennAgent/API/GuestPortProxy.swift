import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWSClient
import HummingbirdWebSocket
import NIOCore
import NIOHTTP1
import NIOWebSocket

/// `ANY /v1/capsules/{id}/ports/{port}/{path…}`: HTTP and WebSocket traffic to a TCP port of a running capsule (the
/// control plane's port proxy, `{port}-{id}.{domain}`, lands here). The guest is reached at the capsule's address —
/// the namespace end of its slot, which DNATs every port to the guest (`NetworkPlan`) — or at whatever host the
/// runtime reports for envd (`127.0.0.1` in `EnvdBackedRuntime`).
///
/// Same streaming and header rules as ``EnvdProxy`` (hop-by-hop headers and `Host` dropped both ways, bodies never
/// collected) with two differences: no envd token is added, and the caller's own `Authorization` — which the
/// control plane must move aside because the agent's bearer token occupies that header — arrives as
/// `X-Wrenn-Forwarded-Authorization` and is restored for the guest. Every request and every frame counts as
/// activity for the idle timer. A port nothing listens on is 502 `unavailable`.
struct GuestPortProxy: Sendable {
    let services: AgentServices

    static let forwardedAuthorization = "x-wrenn-forwarded-authorization"

    func register(on router: Router<AgentRequestContext>) {
        for method in EnvdProxy.methods {
            for path in ["/v1/capsules/:id/ports/:port", "/v1/capsules/:id/ports/:port/**"] {
                router.on(RouterPath(path), method: method) { request, context in try await forward(request, context: context) }
            }
        }
    }

    func registerWebSocket(on router: Router<AgentRequestContext>) {
        for path in ["/v1/capsules/:id/ports/:port", "/v1/capsules/:id/ports/:port/**"] {
            router.ws(RouterPath(path), shouldUpgrade: { _, context in
                _ = try Self.port(context)
                return .upgrade([:])
            }, onUpgrade: { inbound, outbound, context in
                try await pipe(inbound: inbound, outbound: outbound, context: context)
            })
        }
    }

    static func port(_ context: AgentRequestContext) throws -> Int {
        guard let port = context.parameters.get("port").flatMap(Int.init), (1...65535).contains(port) else {
            throw AgentError.invalid("port must be 1–65535")
        }
        return port
    }

    /// The request target after `/v1/capsules/{id}/ports/{port}`, query included, exactly as received.
    static func guestTarget(of request: Request, id: String, port: Int) throws -> String {
        let raw = request.head.path ?? request.uri.string
        let prefix = "/v1/capsules/\(id)/ports/\(port)"
        guard raw.hasPrefix(prefix) else { throw AgentError.invalid("malformed proxy path") }
        let rest = raw.dropFirst(prefix.count)
        if rest.isEmpty || rest.hasPrefix("?") { return "/" + rest }
        return String(rest)
    }

    /// The guest's address for `id` (409 unless running).
    func guestHost(_ id: String) async throws -> String {
        try await services.envdTarget(id).host
    }

    func forward(_ request: Request, context: AgentRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        let port = try Self.port(context)
        let host = try await guestHost(id)
        let path = try Self.guestTarget(of: request, id: id, port: port)

        var outbound = HTTPClientRequest(url: "http://\(EnvdProxy.hostPort(host, port))\(path)")
        outbound.method = HTTPMethod(rawValue: request.method.rawValue)
        let dropped = EnvdProxy.hopByHop.union(EnvdProxy.connectionTokens(request.headers))
            .union(["host", "authorization", "content-length", Self.forwardedAuthorization])
        for field in request.headers where !dropped.contains(field.name.canonicalName) {
            outbound.headers.add(name: field.name.rawName, value: field.value)
        }
        if let authorization = request.headers[HTTPField.Name(Self.forwardedAuthorization)!] {
            outbound.headers.add(name: "Authorization", value: authorization)
        }

        let lease = services.activity.begin(id)
        if let length = request.headers[.contentLength].flatMap({ Int64($0) }) {
            if length > 0 { outbound.body = .stream(EnvdProxy.touching(request.body, lease), length: .known(length)) }
        } else if request.headers[.transferEncoding] != nil {
            outbound.body = .stream(EnvdProxy.touching(request.body, lease), length: .unknown)
        }

        let response: HTTPClientResponse
        do {
            response = try await services.client.execute(
                outbound, deadline: .now() + .seconds(services.configuration.envdResponseTimeout.components.seconds),
                logger: context.logger)
        } catch {
            lease.release()
            throw AgentError.badGateway("capsule \(id) port \(port) unreachable: \(error)")
        }

        var headers = HTTPFields()
        let droppedBack = EnvdProxy.hopByHop.union(EnvdProxy.connectionTokens(HTTPFields(response.headers)))
        for (name, value) in response.headers where !droppedBack.contains(name.lowercased()) {
            if let field = HTTPField.Name(name) { headers.append(HTTPField(name: field, value: value)) }
        }
        let status = HTTPResponse.Status(code: Int(response.status.code), reasonPhrase: response.status.reasonPhrase)
        if request.method == .head {
            lease.release()
            return Response(status: status, headers: headers, body: ResponseBody())
        }
        let body = response.body
        let length = response.headers.first(name: "content-length").flatMap { Int($0) }
        return Response(status: status, headers: headers, body: ResponseBody(contentLength: length) { writer in
            defer { lease.release() }
            for try await chunk in body {
                lease.touch()
                try await writer.write(chunk)
            }
            try await writer.finish(nil)
        })
    }

    /// Opens a WebSocket to the guest's port and copies frames both ways (as ``EnvdWebSocketProxy`` does for envd).
    func pipe(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter,
              context: WebSocketRouterContext<AgentRequestContext>) async throws {
        let id = context.requestContext.parameters.get("id") ?? ""
        let logger = context.logger
        let lease = services.activity.begin(id)
        defer { lease.release() }
        guard let (url, headers) = try await EnvdWebSocketProxy.upstream(outbound, {
            let port = try Self.port(context.requestContext)
            let host = try await guestHost(id)
            var headers = HTTPFields()
            if let authorization = context.request.headers[HTTPField.Name(Self.forwardedAuthorization)!] {
                headers[.authorization] = authorization
            }
            return ("ws://\(EnvdProxy.hostPort(host, port))\(try Self.guestTarget(of: context.request, id: id, port: port))", headers)
        }) else { return }
        await EnvdWebSocketProxy.relay(inbound: inbound, outbound: outbound, url: url, headers: headers,
                                       maxFrame: services.configuration.maxWebSocketFrame, lease: lease, logger: logger) { error in
            logger.debug("guest port WebSocket proxy failed", metadata: ["id": "\(id)", "url": "\(url)", "error": "\(error)"])
            return .badGateway("capsule \(id) port WebSocket failed: \(error)")
        }
    }
}
