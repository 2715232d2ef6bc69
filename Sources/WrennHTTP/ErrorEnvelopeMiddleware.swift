import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// Turns every error escaping a route into the error envelope, the same way in the control plane, the agent and envd:
/// ``EnvelopeError``s as they are; errors `translate` knows (a runtime failure in the agent) as it says; the
/// framework's `HTTPError`s by status (unknown route 404 `not_found`, oversized body 413 `too_large`, …); undecodable
/// JSON 400 `invalid_request`; a cancelled request 503 `unavailable`; anything else 500 `internal_error`, logged,
/// without internal details.
public struct ErrorEnvelopeMiddleware<Context: RequestContext>: RouterMiddleware {
    let translate: @Sendable (any Error, Logger) -> (any EnvelopeError)?

    public init(translate: @escaping @Sendable (any Error, Logger) -> (any EnvelopeError)? = { _, _ in nil }) {
        self.translate = translate
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            return Self.envelope(for: error, request: request, maxUploadSize: context.maxUploadSize, logger: context.logger,
                                 translate: translate).envelopeResponse
        }
    }

    /// The envelope error `error` is reported as.
    public static func envelope(for error: any Error, request: Request? = nil, maxUploadSize: Int = 0, logger: Logger,
                                translate: (any Error, Logger) -> (any EnvelopeError)? = { _, _ in nil }) -> any EnvelopeError {
        if let known = error as? any EnvelopeError { return known }
        if let translated = translate(error, logger) { return translated }
        switch error {
        case let error as HTTPError:
            let message: String
            switch error.status.code {
            case 404: message = error.body ?? "no such route: \(request.map { "\($0.method.rawValue) \($0.uri.path)" } ?? "")"
            case 413: message = "request body too large (limit \(maxUploadSize) bytes)"
            default: message = error.body ?? error.status.reasonPhrase
            }
            return APIError(error.status, APIError.code(for: error.status), message)
        case let error as DecodingError:
            return APIError.invalid("malformed request body: \(describe(error))")
        case let error as any HTTPResponseError:
            return APIError(error.status, APIError.code(for: error.status), error.status.reasonPhrase)
        case is CancellationError:
            return APIError.unavailable("request cancelled")
        default:
            logger.error("request failed", metadata: ["path": "\(request?.uri.path ?? "")", "error": "\(error)"])
            return APIError.internalError("internal error")
        }
    }

    /// A decoding failure in a sentence.
    public static func describe(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, _): return "missing field '\(key.stringValue)'"
        case .typeMismatch(_, let ctx), .valueNotFound(_, let ctx):
            return "wrong type at '\(ctx.codingPath.map(\.stringValue).joined(separator: "."))'"
        case .dataCorrupted(let ctx): return ctx.debugDescription
        @unknown default: return "\(error)"
        }
    }
}
