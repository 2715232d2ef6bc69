import Hummingbird
import Logging

/// Turns every error into the Wrenn error envelope: unknown routes → 404 `not_found`, undecodable bodies →
/// 400 `invalid_request`, anything unexpected → 500 `internal_error` (logged).
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as EnvdError {
            throw error
        } catch let error as HTTPError {
            let message = error.body ?? error.status.reasonPhrase
            switch error.status {
            case .notFound: throw EnvdError.notFound("no route \(request.method) \(request.uri.path)")
            case .badRequest: throw EnvdError.invalid(message)
            case .unauthorized: throw EnvdError.unauthorized(message)
            case .contentTooLarge: throw EnvdError(.contentTooLarge, "too_large", message)
            default: throw EnvdError(error.status, "http_\(error.status.code)", message)
            }
        } catch let error as DecodingError {
            throw EnvdError.invalid("malformed request body: \(Self.describe(error))")
        } catch is CancellationError {
            throw EnvdError(.serviceUnavailable, "cancelled", "request cancelled")
        } catch {
            context.logger.error("request failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            throw EnvdError.internalError("\(error)")
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
