import Hummingbird

/// Requires `Authorization: Bearer <agent token>` on every route; answers 401 before any handler runs.
/// The comparison takes the same time whatever the first differing byte is.
struct AgentAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: [UInt8]

    init(token: String) { self.token = Array(token.utf8) }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else {
            throw AgentError.unauthorized("missing bearer token")
        }
        let prefix = "bearer "
        guard header.count > prefix.count, header.prefix(prefix.count).lowercased() == prefix else {
            throw AgentError.unauthorized("authorization must be a bearer token")
        }
        guard Self.constantTimeEquals(Array(header.dropFirst(prefix.count).utf8), token) else {
            throw AgentError.unauthorized("invalid bearer token")
        }
        return try await next(request, context)
    }

    /// Compares every byte of the longer input, so timing reveals neither the position of a mismatch nor, beyond
    /// the loop length, anything about the secret.
    static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        let length = max(a.count, b.count)
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<length {
            let x = index < a.count ? a[index] : 0
            let y = index < b.count ? b[index] : 0
            difference |= x ^ y
        }
        return difference == 0 && !b.isEmpty
    }
}
