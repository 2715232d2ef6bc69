import Foundation
import Hummingbird
import HTTPTypes
import NIOCore
import WrennWire

/// Builds the `{"error":{"code","message"}}` responses every failure is reported with.
enum APIErrorResponse {
    static func make(status: HTTPResponse.Status, code: String, message: String) -> Response {
        let body = (try? WireCoding.makeEncoder().encode(ErrorEnvelope(code: code, message: message))) ?? Data()
        return Response(status: status, headers: [.contentType: "application/json; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    static func status(for kind: ServiceError.Kind) -> HTTPResponse.Status {
        switch kind {
        case .badRequest: .badRequest
        case .unauthorized: .unauthorized
        case .forbidden: .forbidden
        case .notFound: .notFound
        case .conflict: .conflict
        case .tooLarge: .contentTooLarge
        case .unavailable: .serviceUnavailable
        case .badGateway: .badGateway
        case .internalError: .internalServerError
        }
    }

    /// The spec's code for a bare HTTP status raised by the framework (unknown route, oversized body, …).
    static func code(for status: HTTPResponse.Status) -> String {
        switch status.code {
        case 400: "invalid_request"
        case 401: "unauthorized"
        case 403: "forbidden"
        case 404: "not_found"
        case 405: "method_not_allowed"
        case 409: "conflict"
        case 413: "too_large"
        case 415: "unsupported_media_type"
        case 503: "unavailable"
        default: status.code >= 500 ? "internal_error" : "invalid_request"
        }
    }
}

/// Turns every error escaping a route into the spec's error envelope. Unexpected errors are logged and answered as a
/// generic 500 without internal details.
struct ErrorEnvelopeMiddleware: RouterMiddleware {
    typealias Context = WrennRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as ServiceError {
            return APIErrorResponse.make(status: APIErrorResponse.status(for: error.kind), code: error.code, message: error.message)
        } catch let error as HTTPError {
            let message: String
            switch error.status.code {
            case 404: message = error.body ?? "no such route: \(request.method.rawValue) \(request.uri.path)"
            case 413: message = "request body too large (limit \(context.maxUploadSize) bytes)"
            default: message = error.body ?? error.status.reasonPhrase
            }
            return APIErrorResponse.make(status: error.status, code: APIErrorResponse.code(for: error.status), message: message)
        } catch let error as any HTTPResponseError {
            return APIErrorResponse.make(status: error.status, code: APIErrorResponse.code(for: error.status), message: error.status.reasonPhrase)
        } catch {
            context.logger.error("unhandled error", metadata: ["error": "\(error)", "path": "\(request.uri.path)"])
            return APIErrorResponse.make(status: .internalServerError, code: "internal_error", message: "internal error")
        }
    }
}
