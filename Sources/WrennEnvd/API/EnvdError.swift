import Foundation
import Hummingbird
import WrennWire

/// An error answered as `{"error":{"code","message"}}` with its HTTP status.
struct EnvdError: Error, HTTPResponseError, CustomStringConvertible {
    let status: HTTPResponse.Status
    let code: String
    let message: String

    init(_ status: HTTPResponse.Status, _ code: String, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    var description: String { "\(status.code) \(code): \(message)" }

    static func invalid(_ message: String) -> EnvdError { .init(.badRequest, "invalid_request", message) }
    static func notFound(_ message: String) -> EnvdError { .init(.notFound, "not_found", message) }
    static func conflict(_ message: String) -> EnvdError { .init(.conflict, "conflict", message) }
    static func alreadyExists(_ message: String) -> EnvdError { .init(.conflict, "already_exists", message) }
    static func unauthorized(_ message: String) -> EnvdError { .init(.unauthorized, "unauthorized", message) }
    static func forbidden(_ message: String) -> EnvdError { .init(.forbidden, "forbidden", message) }
    static func internalError(_ message: String) -> EnvdError { .init(.internalServerError, "internal_error", message) }

    /// Maps an errno from a file system call on `path` to the right answer.
    static func fromErrno(_ code: Int32, _ what: String, path: String) -> EnvdError {
        let text = String(cString: strerror(code))
        switch code {
        case ENOENT: return .notFound("\(what) \(path): no such file or directory")
        case ENOTDIR: return .invalid("\(what) \(path): a path component is not a directory")
        case EISDIR: return .invalid("\(what) \(path): is a directory")
        case EEXIST: return .conflict("\(what) \(path): already exists")
        case EACCES, EPERM: return .forbidden("\(what) \(path): \(text)")
        case ENOTEMPTY: return .conflict("\(what) \(path): directory not empty")
        case ENOSPC, EDQUOT: return .init(.init(code: 507, reasonPhrase: "Insufficient Storage"), "insufficient_storage", "\(what) \(path): \(text)")
        case ENAMETOOLONG, EINVAL, ELOOP: return .invalid("\(what) \(path): \(text)")
        default: return .internalError("\(what) \(path): \(text)")
        }
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = ErrorEnvelope(code: code, message: message)
        let data = try WireCoding.makeEncoder().encode(body)
        return Response(
            status: status,
            headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: data))
        )
    }
}
