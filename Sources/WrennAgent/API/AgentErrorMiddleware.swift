import Hummingbird
import Logging

/// Turns every error into the public envelope: runtime errors by case, unknown routes → 404 `not_found`,
/// undecodable bodies → 400 `invalid_request`, anything unexpected → 500 `internal_error` (logged).
struct AgentErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as AgentError {
            throw error
        } catch let error as RuntimeError {
            if case .vmm = error {
                context.logger.error("runtime failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            }
            throw AgentError(error)
        } catch let error as HTTPError {
            let message = error.body ?? error.status.reasonPhrase
            switch error.status {
            case .notFound: throw AgentError.notFound("no route \(request.method) \(request.uri.path)")
            case .badRequest: throw AgentError.invalid(message)
            case .unauthorized: throw AgentError.unauthorized(message)
            case .contentTooLarge: throw AgentError(.contentTooLarge, "invalid_request", message)
            case .methodNotAllowed: throw AgentError(.methodNotAllowed, "invalid_request", message)
            default: throw AgentError(error.status, error.status.code >= 500 ? "internal_error" : "invalid_request", message)
            }
        } catch let error as DecodingError {
            throw AgentError.invalid("malformed request body: \(Self.describe(error))")
        } catch is CancellationError {
            throw AgentError.unavailable("request cancelled")
        } catch {
            context.logger.error("request failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            throw AgentError.internalError("\(error)")
        }
    }

    static func describe(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, _): return "missing field '\(key.stringValue)'"
        case .typeMismatch(_, let ctx), .valueNotFound(_, let ctx):
            return "wrong type at '\(ctx.codingPath.map(\.stringValue).joined(separator: "."))'"
        case .dataCorrupted(let ctx): return ctx.debugDescription
        @unknown default: return "\(error)"
        }
    }
}
