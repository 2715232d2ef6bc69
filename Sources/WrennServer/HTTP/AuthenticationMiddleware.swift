import HTTPTypes
import Hummingbird

/// Establishes `context.principal` from `X-API-Key` or the `wrenn_sid` cookie. It never rejects a request by itself
/// except for a presented-but-invalid API key; routes decide what they require (`requireSession`, `requireCaller`).
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = WrennRequestContext
    let sessions: SessionService
    let apiKeys: APIKeyService

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        if let key = request.headers[.xAPIKey] {
            guard let principal = try await apiKeys.authenticate(key: key) else {
                throw ServiceError.unauthorized("invalid API key")
            }
            context.principal = principal
        } else if let sid = request.cookies[SessionCookies.sid]?.value, !sid.isEmpty {
            context.principal = try await sessions.authenticate(sid: sid)
        }
        return try await next(request, context)
    }
}

extension HTTPField.Name {
    static let xAPIKey = Self("X-API-Key")!
    static let xCSRFToken = Self("X-CSRF-Token")!
    static let xHostToken = Self("X-Host-Token")!
}

extension WrennRequestContext {
    /// The caller's cookie session, enforcing the CSRF double-submit on state-changing methods.
    /// API keys are refused here: these operations are for people, not programs.
    func requireSession(_ request: Request) throws -> Principal {
        guard let principal else { throw ServiceError.unauthorized("sign in first: this operation needs a session") }
        guard case .session(_, let csrfHash) = principal.credential else {
            throw ServiceError.unauthorized("this operation needs a signed-in session (wrenn_sid cookie), not an API key")
        }
        try Self.checkCSRF(request, csrfHash: csrfHash)
        return principal
    }

    /// The caller by session (with CSRF on state changes) or by API key.
    func requireCaller(_ request: Request) throws -> Principal {
        guard let principal else { throw ServiceError.unauthorized("authentication required: send X-API-Key or sign in") }
        if case .session(_, let csrfHash) = principal.credential { try Self.checkCSRF(request, csrfHash: csrfHash) }
        return principal
    }

    /// Double submit: on non-GET requests the `X-CSRF-Token` header must equal the `wrenn_csrf` cookie and be the token
    /// issued with this session.
    static func checkCSRF(_ request: Request, csrfHash: String) throws {
        switch request.method {
        case .get, .head, .options: return
        default: break
        }
        guard let header = request.headers[.xCSRFToken], !header.isEmpty,
              let cookie = request.cookies[SessionCookies.csrf]?.value,
              Secrets.constantTimeEquals(header, cookie),
              Secrets.constantTimeEquals(Secrets.sha256Hex(header), csrfHash)
        else { throw ServiceError(.forbidden, "csrf_failed", "missing or invalid X-CSRF-Token header") }
    }

    /// Where the request came from, for the session record.
    func origin(_ request: Request) -> SessionService.Origin {
        SessionService.Origin(userAgent: request.headers[.userAgent] ?? "", ipAddress: remoteAddress)
    }
}
