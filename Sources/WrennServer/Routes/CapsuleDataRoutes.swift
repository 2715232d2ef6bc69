import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import WrennWire

/// The capsule data plane over HTTP: exec, processes, files. Each call is authorized here, then its body streams
/// unchanged to the capsule's envd through its host agent (`/v1/capsules/{id}/envd/…`), and the answer streams back:
/// the control plane never holds a whole request or file in memory.
struct CapsuleDataRoutes {
    let services: ControlPlaneServices
    var scope: CapsuleScope = .team
    /// Upper bound for one proxied call (a long foreground exec or a large file).
    static let deadline: TimeAmount = .hours(2)

    func register(on router: Router<WrennRequestContext>) {
        let c = router.group(RouterPath(scope.prefix))
        c.post("exec") { request, context in try await proxy(request, context, to: "/exec", activity: true) }
        c.get("processes") { request, context in try await proxy(request, context, to: "/processes", activity: true) }
        c.delete("processes/:selector") { request, context in
            let selector = try context.parameters.require("selector")
            guard let escaped = selector.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-_.")))
            else { throw ServiceError.invalid("invalid process selector") }
            return try await proxy(request, context, to: "/processes/\(escaped)", activity: true)
        }
        c.post("files/read") { request, context in try await proxy(request, context, to: "/files/read", activity: false) }
        c.post("files/stream/read") { request, context in try await proxy(request, context, to: "/files/read", activity: false) }
        c.post("files/list") { request, context in try await proxy(request, context, to: "/files/list", activity: false) }
        c.post("files/mkdir") { request, context in try await proxy(request, context, to: "/files/mkdir", activity: false) }
        c.post("files/remove") { request, context in try await proxy(request, context, to: "/files/remove", activity: false) }
    }

    /// Forwards `request` to envd's `envdPath` (keeping the query string) and streams the answer back.
    func proxy(_ request: Request, _ context: WrennRequestContext, to envdPath: String, activity: Bool,
               body overrideBody: HTTPClientRequest.Body? = nil, query overrideQuery: String? = nil) async throws -> Response {
        let principal = try await scope.caller(request, context)
        let id = try context.parameters.require("id")
        let (_, agent) = try await services.capsules.requireRunning(principal, id: id)
        if activity { await services.capsules.touch(id) }
        let query = overrideQuery ?? request.uri.query
        var upstream = agent.request(HTTPMethod(rawValue: request.method.rawValue),
                                     "/v1/capsules/\(id)/envd\(envdPath)" + (query.map { "?\($0)" } ?? ""))
        if let type = request.headers[.contentType] { upstream.headers.add(name: "Content-Type", value: type) }
        if let body = overrideBody {
            upstream.body = body
        } else if request.method != .get && request.method != .head {
            let length = request.headers[.contentLength].flatMap(Int.init)
            upstream.body = .stream(request.body, length: length.map { .known(Int64($0)) } ?? .unknown)
        }
        let response: HTTPClientResponse
        do {
            response = try await agent.http.execute(upstream, timeout: Self.deadline)
        } catch {
            throw ServiceError(.unavailable, "host_unavailable", "the capsule's host agent is unreachable")
        }
        var headers = HTTPFields()
        for name in ["Content-Type", "Content-Length", "Content-Disposition"] {
            if let value = response.headers.first(name: name), let field = HTTPField.Name(name) { headers[field] = value }
        }
        return Response(status: .init(code: Int(response.status.code)), headers: headers, body: ResponseBody(asyncSequence: response.body))
    }
}
