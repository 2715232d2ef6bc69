import AsyncHTTPClient
import Foundation
import Synchronization
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1

/// `ANY /v1/capsules/{id}/envd/{path…}` over plain HTTP: forwards method, path, query, headers and the body to
/// the capsule's envd and streams the answer back. Neither body is ever collected, so a 1 GiB upload or
/// download costs a few 64 KiB buffers.
///
/// Headers: hop-by-hop ones (RFC 9110 §7.6.1 and whatever `Connection` names) and `Host` are dropped both ways;
/// `Authorization` (the agent's token) is replaced with the capsule's envd token. The request counts as
/// activity for the idle timer from its start until the last response byte went out.
struct EnvdProxy: Sendable {
    let services: AgentServices

    static let methods: [HTTPRequest.Method] = [.get, .post, .put, .delete, .patch, .head, .options]

    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer",
        "transfer-encoding", "upgrade",
    ]

    func register(on router: Router<AgentRequestContext>) {
        for method in Self.methods {
            router.on("/v1/capsules/:id/envd/**", method: method) { request, context in
                try await forward(request, context: context)
            }
        }
    }

    /// The part of the request target after `/v1/capsules/{id}/envd`, query included, exactly as received.
    static func envdTarget(of request: Request, id: String) throws -> String {
        let raw = request.head.path ?? request.uri.string
        let prefix = "/v1/capsules/\(id)/envd"
        guard raw.hasPrefix(prefix) else { throw AgentError.invalid("malformed proxy path") }
        let rest = raw.dropFirst(prefix.count)
        if rest.isEmpty || rest.hasPrefix("?") { return "/" + rest }
        return String(rest)
    }

    /// Names the `Connection` header lists, lowercased (they are hop-by-hop too).
    static func connectionTokens(_ fields: HTTPFields) -> Set<String> {
        Set(fields[values: .connection].flatMap { $0.split(separator: ",") }.map {
            $0.trimmingCharacters(in: .whitespaces).lowercased()
        })
    }

    func forward(_ request: Request, context: AgentRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        let target = try await services.envdTarget(id)
        let path = try Self.envdTarget(of: request, id: id)

        var outbound = HTTPClientRequest(url: "http://\(Self.hostPort(target.host, target.port))\(path)")
        outbound.method = HTTPMethod(rawValue: request.method.rawValue)
        let dropped = Self.hopByHop.union(Self.connectionTokens(request.headers)).union(["host", "authorization", "content-length"])
        for field in request.headers where !dropped.contains(field.name.canonicalName) {
            outbound.headers.add(name: field.name.rawName, value: field.value)
        }
        outbound.headers.add(name: "Authorization", value: "Bearer \(target.token)")

        let lease = services.activity.begin(id)
        if let length = request.headers[.contentLength].flatMap({ Int64($0) }) {
            if length > 0 { outbound.body = .stream(Self.touching(request.body, lease), length: .known(length)) }
        } else if request.headers[.transferEncoding] != nil {
            outbound.body = .stream(Self.touching(request.body, lease), length: .unknown)
        }

        let response: HTTPClientResponse
        do {
            response = try await services.client.execute(
                outbound, deadline: .now() + .nanoseconds(Int64(services.configuration.envdResponseTimeout.components.seconds) * 1_000_000_000),
                logger: context.logger)
        } catch {
            lease.release()
            context.logger.warning("envd proxy failed", metadata: ["id": "\(id)", "path": "\(path)", "error": "\(error)"])
            throw AgentError.badGateway("capsule \(id) envd unreachable: \(error)")
        }

        var headers = HTTPFields()
        let droppedBack = Self.hopByHop.union(Self.connectionTokens(HTTPFields(response.headers)))
        for (name, value) in response.headers where !droppedBack.contains(name.lowercased()) {
            if let field = HTTPField.Name(name) { headers.append(HTTPField(name: field, value: value)) }
        }
        let body = response.body
        if request.method == .head {
            lease.release()
            return Response(status: .init(code: Int(response.status.code), reasonPhrase: response.status.reasonPhrase),
                            headers: headers, body: ResponseBody())
        }
        let length = response.headers.first(name: "content-length").flatMap { Int($0) }
        return Response(
            status: .init(code: Int(response.status.code), reasonPhrase: response.status.reasonPhrase),
            headers: headers,
            body: ResponseBody(contentLength: length) { writer in
                defer { lease.release() }
                for try await chunk in body {
                    lease.touch()
                    try await writer.write(chunk)
                }
                try await writer.finish(nil)
            }
        )
    }

    static func hostPort(_ host: String, _ port: Int) -> String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// The request body, touching the activity lease per chunk.
    static func touching(_ body: RequestBody, _ lease: ActivityLease) -> TouchingBody {
        TouchingBody(body: body, lease: lease)
    }
}

/// A request body that records activity on a capsule for every chunk it yields.
///
/// It can be read once, like the request body under it; a second reader (an HTTP client that retries a request on a
/// fresh connection) gets an error instead of tripping the underlying body's single-iterator precondition, which
/// would take the whole agent down (seen once under heavy parallel load).
struct TouchingBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let body: RequestBody
    let lease: ActivityLease
    private let taken = Taken()

    init(body: RequestBody, lease: ActivityLease) {
        self.body = body
        self.lease = lease
    }

    final class Taken: Sendable {
        private let flag = Mutex(false)
        /// True the first time only.
        func take() -> Bool { flag.withLock { taken in defer { taken = true }; return !taken } }
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: RequestBody.AsyncIterator?
        let lease: ActivityLease

        mutating func next() async throws -> ByteBuffer? {
            guard base != nil else { throw AgentError.badGateway("the request body was already forwarded and cannot be sent again") }
            guard let chunk = try await base?.next() else { return nil }
            lease.touch()
            return chunk
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: taken.take() ? body.makeAsyncIterator() : nil, lease: lease)
    }
}

extension HTTPFields {
    /// Converts NIO's header list.
    init(_ headers: HTTPHeaders) {
        self.init()
        for (name, value) in headers {
            if let field = HTTPField.Name(name) { append(HTTPField(name: field, value: value)) }
        }
    }
}
