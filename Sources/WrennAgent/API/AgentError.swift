import Foundation
import Hummingbird
import WrennWire

/// An error the agent answers as the public envelope `{"error":{"code","message"}}` with its HTTP status.
public struct AgentError: Error, HTTPResponseError, CustomStringConvertible {
    /// HTTP status.
    public let status: HTTPResponse.Status
    /// Public error code (`not_found`, `invalid_state`, `invalid_request`, `conflict`, `unavailable`, `internal_error`, `unauthorized`).
    public let code: String
    /// Human-readable explanation.
    public let message: String

    /// Creates an error.
    public init(_ status: HTTPResponse.Status, _ code: String, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    /// `status code: message`.
    public var description: String { "\(status.code) \(code): \(message)" }

    static func invalid(_ message: String) -> AgentError { .init(.badRequest, "invalid_request", message) }
    static func notFound(_ message: String) -> AgentError { .init(.notFound, "not_found", message) }
    static func invalidState(_ message: String) -> AgentError { .init(.conflict, "invalid_state", message) }
    static func conflict(_ message: String) -> AgentError { .init(.conflict, "conflict", message) }
    static func unauthorized(_ message: String) -> AgentError { .init(.unauthorized, "unauthorized", message) }
    static func unavailable(_ message: String) -> AgentError { .init(.serviceUnavailable, "unavailable", message) }
    static func badGateway(_ message: String) -> AgentError { .init(.badGateway, "unavailable", message) }
    static func internalError(_ message: String) -> AgentError { .init(.internalServerError, "internal_error", message) }

    /// Maps a runtime failure to the public code the control plane passes through.
    public init(_ error: RuntimeError) {
        switch error {
        case .notFound: self = .notFound(error.description)
        case .invalidState: self = .invalidState(error.description)
        case .alreadyExists: self = .conflict(error.description)
        case .noFreeSlot: self = .unavailable(error.description)
        case .templateNotFound: self = .notFound(error.description)
        case .invalidRequest: self = .invalid(error.description)
        case .guestNotReady, .guestProtocol: self = .unavailable(error.description)
        case .vmm: self = .internalError(error.description)
        }
    }

    /// The envelope as a response.
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        try Self.envelopeResponse(status: status, code: code, message: message)
    }

    static func envelopeResponse(status: HTTPResponse.Status, code: String, message: String) throws -> Response {
        let data = try WireCoding.makeEncoder().encode(ErrorEnvelope(code: code, message: message))
        return Response(
            status: status,
            headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: data))
        )
    }
}
