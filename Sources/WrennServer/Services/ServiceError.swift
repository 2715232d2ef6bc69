/// A failure a service reports to its caller: a kind (mapped to an HTTP status at the edge), the spec's error code,
/// and a message for people. Services never throw HTTP types; routes never invent codes.
public struct ServiceError: Error, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case badRequest, unauthorized, forbidden, notFound, conflict, tooLarge, unavailable, badGateway, internalError
    }

    public let kind: Kind
    public let code: String
    public let message: String

    public init(_ kind: Kind, _ code: String, _ message: String) {
        self.kind = kind
        self.code = code
        self.message = message
    }

    public static func invalid(_ message: String) -> ServiceError { .init(.badRequest, "invalid_request", message) }
    public static func unauthorized(_ message: String = "authentication required") -> ServiceError {
        .init(.unauthorized, "unauthorized", message)
    }
    public static func forbidden(_ message: String) -> ServiceError { .init(.forbidden, "forbidden", message) }
    public static func notFound(_ what: String) -> ServiceError { .init(.notFound, "not_found", "\(what) not found") }
    public static func conflict(_ code: String = "conflict", _ message: String) -> ServiceError { .init(.conflict, code, message) }
}
