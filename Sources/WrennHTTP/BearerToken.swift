import HTTPTypes
import Hummingbird

/// `Authorization: Bearer <token>`: the one parser (agent, envd, the control plane's host callbacks) and the one
/// constant-time comparison.
public enum BearerToken {
    /// The token of an `Authorization` value; nil when it is missing, empty or not a bearer credential. The scheme
    /// is case-insensitive (RFC 9110 §11.1).
    public static func parse(_ header: String?) -> Substring? {
        guard let header else { return nil }
        let prefix = "bearer "
        guard header.utf8.count > prefix.utf8.count, header.prefix(prefix.count).lowercased() == prefix else { return nil }
        let token = header.dropFirst(prefix.count)
        return token.isEmpty ? nil : token
    }

    /// Whether `header` carries exactly `expected` (compared in constant time; an empty `expected` matches nothing).
    public static func matches(_ header: String?, _ expected: String) -> Bool {
        guard let token = parse(header) else { return false }
        return ConstantTime.equal(Array(token.utf8), Array(expected.utf8))
    }
}

/// Comparison whose duration depends on neither the position of the first difference nor, beyond the loop length,
/// on the secret.
public enum ConstantTime {
    /// True when `a` and `b` are equal and not empty.
    public static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        let length = max(a.count, b.count)
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<length {
            difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
        }
        return difference == 0 && !b.isEmpty
    }
}

/// Requires a bearer token `accepts` approves on every request `isPublic` does not exempt; 401 envelope before any
/// route runs.
public struct BearerAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let accepts: @Sendable (Substring) -> Bool
    let isPublic: @Sendable (Request) -> Bool

    public init(isPublic: @escaping @Sendable (Request) -> Bool = { _ in false }, accepts: @escaping @Sendable (Substring) -> Bool) {
        self.accepts = accepts
        self.isPublic = isPublic
    }

    /// Accepts exactly `token`.
    public init(token: String) {
        let expected = Array(token.utf8)
        self.init { ConstantTime.equal(Array($0.utf8), expected) }
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if isPublic(request) { return try await next(request, context) }
        guard let header = request.headers[.authorization] else { throw APIError.unauthorized("missing bearer token") }
        guard let token = BearerToken.parse(header) else { throw APIError.unauthorized("authorization must be a bearer token") }
        guard accepts(token) else { throw APIError.unauthorized("invalid bearer token") }
        return try await next(request, context)
    }
}
