import HTTPTypes
import WrennHTTP

/// A failure a service reports to its caller: a kind (mapped to an HTTP status at the edge), the spec's error code,
/// and a message for people. Services never throw HTTP types; routes never invent codes. The edge's error middleware
/// answers it as the envelope (it is an ``EnvelopeError``).
public struct ServiceError: Error, Sendable, Equatable, EnvelopeError {
    public enum Kind: Sendable, Equatable {
        case badRequest, unauthorized, forbidden, notFound, conflict, tooLarge, tooManyRequests, unavailable, badGateway,
             internalError
    }

    public let kind: Kind
    public let code: String
    public let message: String
    /// Seconds a refused caller should wait (`Retry-After`), for 429 and 503.
    public var retryAfter: Int?

    public init(_ kind: Kind, _ code: String, _ message: String, retryAfter: Int? = nil) {
        self.kind = kind
        self.code = code
        self.message = message
        self.retryAfter = retryAfter
    }

    public var status: HTTPResponse.Status {
        switch kind {
        case .badRequest: .badRequest
        case .unauthorized: .unauthorized
        case .forbidden: .forbidden
        case .notFound: .notFound
        case .conflict: .conflict
        case .tooLarge: .contentTooLarge
        case .tooManyRequests: .tooManyRequests
        case .unavailable: .serviceUnavailable
        case .badGateway: .badGateway
        case .internalError: .internalServerError
        }
    }

    public var headers: HTTPFields {
        guard let retryAfter else { return [:] }
        return [.retryAfter: "\(retryAfter)"]
    }

    public static func invalid(_ message: String) -> ServiceError { .init(.badRequest, "invalid_request", message) }
    public static func unauthorized(_ message: String = "authentication required") -> ServiceError {
        .init(.unauthorized, "unauthorized", message)
    }
    public static func forbidden(_ message: String) -> ServiceError { .init(.forbidden, "forbidden", message) }
    public static func notFound(_ what: String) -> ServiceError { .init(.notFound, "not_found", "\(what) not found") }
    public static func conflict(_ code: String = "conflict", _ message: String) -> ServiceError { .init(.conflict, code, message) }
    /// 429 `too_many_requests` with `Retry-After`.
    public static func tooManyRequests(_ message: String, retryAfter: Int) -> ServiceError {
        .init(.tooManyRequests, "too_many_requests", message, retryAfter: retryAfter)
    }
}
