import Hummingbird

/// Requires `Authorization: Bearer <token>` on every route but `GET /health`; answers 401 before any handler runs.
struct AuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let identity: EnvdIdentity

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if request.method == .get && request.uri.path == "/health" {
            return try await next(request, context)
        }
        guard let header = request.headers[.authorization] else {
            throw EnvdError.unauthorized("missing bearer token")
        }
        let prefix = "Bearer "
        guard header.count > prefix.count, header.prefix(prefix.count).lowercased() == prefix.lowercased() else {
            throw EnvdError.unauthorized("authorization must be a bearer token")
        }
        guard identity.accepts(token: header.dropFirst(prefix.count)) else {
            throw EnvdError.unauthorized("invalid bearer token")
        }
        return try await next(request, context)
    }
}
