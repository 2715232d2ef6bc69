import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import WrennWire

/// The capsule data plane over HTTP: exec, processes, files. Each call passes the data-plane gate (authorization,
/// running check, the team's concurrency share, one audit entry), its body streams unchanged to the capsule's envd
/// through the agent (`AgentClient.envd`), and the answer is the control plane's own (`EnvdAnswer`): JSON it has
/// checked, file bytes as an attachment, errors as the envelope — never a header or content type of the guest's.
struct CapsuleDataRoutes {
    let services: ControlPlaneServices
    var scope: CapsuleScope = .team

    enum Answer { case json(limit: Int), noContent, file }

    func register(on router: Router<WrennRequestContext>) {
        let c = router.group(RouterPath(scope.prefix))
        c.post("exec") { request, context in
            try await call(request, context, "/exec", action: "exec", answer: .json(limit: EnvdAnswer.execLimit))
        }
        c.get("processes") { request, context in
            try await call(request, context, "/processes", action: "processes.list", answer: .json(limit: EnvdAnswer.smallLimit))
        }
        c.delete("processes/:selector") { request, context in
            let selector = try Self.selector(context)
            return try await call(request, context, "/processes/\(Self.encode(selector))", action: "process.kill", answer: .noContent,
                                  metadata: ["selector": selector])
        }
        c.post("files/read") { request, context in try await call(request, context, "/files/read", action: "files.read", answer: .file) }
        c.post("files/stream/read") { request, context in try await call(request, context, "/files/read", action: "files.read", answer: .file) }
        c.post("files/list") { request, context in
            try await call(request, context, "/files/list", action: "files.list", answer: .json(limit: EnvdAnswer.listLimit))
        }
        c.post("files/mkdir") { request, context in
            try await call(request, context, "/files/mkdir", action: "files.mkdir", answer: .json(limit: EnvdAnswer.smallLimit))
        }
        c.post("files/remove") { request, context in
            try await call(request, context, "/files/remove", action: "files.remove", answer: .noContent)
        }
    }

    /// Passes `request` (query and body) to envd's `envdPath` and answers as `answer` says.
    func call(_ request: Request, _ context: WrennRequestContext, _ envdPath: String, action: String, answer: Answer,
              metadata: [String: String] = [:]) async throws -> Response {
        let principal = try await scope.caller(request, context)
        let id = try context.parameters.require("id")
        let (agent, permit) = try await services.dataPlane.begin(principal, capsule: id, action: action, metadata: metadata)
        do {
            await services.capsules.touch(id)
            var body: HTTPClientRequest.Body?
            if request.method != .get && request.method != .head && request.method != .delete {
                let length = request.headers[.contentLength].flatMap(Int64.init)
                body = .stream(request.body, length: length.map { .known($0) } ?? .unknown)
            }
            let response = try await agent.envd(HTTPMethod(rawValue: request.method.rawValue), capsule: id,
                                                envdPath + (request.uri.query.map { "?\($0)" } ?? ""),
                                                contentType: request.headers[.contentType], body: body)
            let timeout = services.config.edge.answerBodyTimeout
            switch answer {
            case .json(let limit):
                defer { permit.release() }
                return try await EnvdAnswer.json(response, limit: limit, timeout: timeout)
            case .noContent:
                defer { permit.release() }
                return try await EnvdAnswer.noContent(response, timeout: timeout)
            case .file:
                // A download holds the team's place until its last byte.
                return try await EnvdAnswer.file(response, holding: permit, timeout: timeout)
            }
        } catch {
            permit.release()
            throw error
        }
    }

    /// The `{selector}` path parameter as the caller meant it (percent-decoded): a pid or a tag.
    static func selector(_ context: WrennRequestContext) throws -> String {
        let raw = try context.parameters.require("selector")
        guard let decoded = raw.removingPercentEncoding, !decoded.isEmpty, decoded.utf8.count <= 256 else {
            throw ServiceError.invalid("invalid process selector")
        }
        return decoded
    }

    /// `selector` as one path segment for envd (every byte but RFC 3986's unreserved ones percent-encoded; envd decodes it).
    static func encode(_ selector: String) -> String {
        selector.addingPercentEncoding(withAllowedCharacters: unreserved) ?? ""
    }

    static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
}
