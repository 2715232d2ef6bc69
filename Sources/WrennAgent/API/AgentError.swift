import Foundation
import Hummingbird
import Logging
import WrennHTTP

/// The agent answers every failure as the public envelope with the edge's one error type (``APIError``): the same
/// failure has the same status and code here as in envd and the control plane.
public typealias AgentError = APIError

extension APIError {
    /// Maps a runtime failure to the public code the control plane passes through.
    public init(_ error: RuntimeError) {
        switch error {
        case .notFound: self = .notFound(error.description)
        case .invalidState: self = .invalidState(error.description)
        case .alreadyExists: self = .conflict(error.description)
        case .noFreeSlot: self = .unavailable(error.description)
        case .templateNotFound: self = .notFound(error.description)
        case .invalidRequest: self = .invalid(error.description)
        case .guestNotReady, .guestProtocol: self = .unavailable(error.description)
        case .vmm: self = .internalError(error.description)
        }
    }

    /// The agent's translation for ``ErrorEnvelopeMiddleware``: runtime failures by case (VMM failures logged).
    static func translate(_ error: any Error, _ logger: Logger) -> (any EnvelopeError)? {
        guard let error = error as? RuntimeError else { return nil }
        if case .vmm = error { logger.error("runtime failed", metadata: ["error": "\(error)"]) }
        return APIError(error)
    }
}
