import Foundation
import HTTPTypes
import Hummingbird
import WrennWire

/// A failure every Wrenn process answers the same way: an HTTP status, the public error code and a message for
/// people, as `{"error":{"code","message"}}` (``JSONResponse/envelope(status:code:message:headers:)``). `headers`
/// carries what the status needs besides the body (`Retry-After` with a 429).
public protocol EnvelopeError: Error {
    var status: HTTPResponse.Status { get }
    var code: String { get }
    var message: String { get }
    var headers: HTTPFields { get }
}

extension EnvelopeError {
    public var headers: HTTPFields { [:] }

    /// The error as the envelope response.
    public var envelopeResponse: Response {
        JSONResponse.envelope(status: status, code: code, message: message, headers: headers)
    }
}

/// The agent's and envd's error (the control plane's services throw their own `ServiceError`, an ``EnvelopeError``
/// too): one type, so the same failure has the same status and code wherever it happens.
public struct APIError: EnvelopeError, HTTPResponseError, CustomStringConvertible, Sendable {
    public let status: HTTPResponse.Status
    public let code: String
    public let message: String
    public let headers: HTTPFields

    public init(_ status: HTTPResponse.Status, _ code: String, _ message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    public var description: String { "\(status.code) \(code): \(message)" }

    public func response(from request: Request, context: some RequestContext) throws -> Response { envelopeResponse }

    public static func invalid(_ message: String) -> APIError { .init(.badRequest, "invalid_request", message) }
    public static func unauthorized(_ message: String) -> APIError { .init(.unauthorized, "unauthorized", message) }
    public static func forbidden(_ message: String) -> APIError { .init(.forbidden, "forbidden", message) }
    public static func notFound(_ message: String) -> APIError { .init(.notFound, "not_found", message) }
    public static func conflict(_ message: String) -> APIError { .init(.conflict, "conflict", message) }
    public static func invalidState(_ message: String) -> APIError { .init(.conflict, "invalid_state", message) }
    public static func alreadyExists(_ message: String) -> APIError { .init(.conflict, "already_exists", message) }
    public static func tooLarge(_ message: String) -> APIError { .init(.contentTooLarge, "too_large", message) }
    public static func internalError(_ message: String) -> APIError { .init(.internalServerError, "internal_error", message) }
    public static func unavailable(_ message: String) -> APIError { .init(.serviceUnavailable, "unavailable", message) }
    /// What a proxy answers when its upstream (envd, a guest port, an agent) cannot be reached or misbehaves.
    public static func badGateway(_ message: String) -> APIError { .init(.badGateway, "unavailable", message) }

    /// The public code of a bare HTTP status the framework raised (unknown route, oversized body, …).
    public static func code(for status: HTTPResponse.Status) -> String {
        switch status.code {
        case 400: "invalid_request"
        case 401: "unauthorized"
        case 403: "forbidden"
        case 404: "not_found"
        case 405: "method_not_allowed"
        case 409: "conflict"
        case 413: "too_large"
        case 415: "unsupported_media_type"
        case 426: "upgrade_required"
        case 429: "too_many_requests"
        case 503: "unavailable"
        default: status.code >= 500 ? "internal_error" : "invalid_request"
        }
    }
}
