import Foundation
import HTTPTypes
import Hummingbird
import WrennHTTP
import WrennWire

/// `POST /v1/hosts/sandbox-events`: a host agent reports what it did on its own (TTL auto-pause, crash, stop).
///
/// A registered agent authenticates with its host JWT in `X-Host-Token`; the agent named in the configuration
/// (`host-local`) with the shared agent token as `Authorization: Bearer`. A `host_id` in the body must be the
/// token's host (403), and the capsule must belong to that host (404).
struct HostCallbackRoutes {
    let services: ControlPlaneServices

    /// The spec's body (`{event, sandbox_id, host_id, timestamp}`); our agents send `AgentCapsuleEvent` (plus nothing
    /// else), so both shapes are accepted.
    struct SpecBody: Decodable {
        var event: String?
        var sandboxID: String?
        var hostID: String?
        var timestamp: Int64?
        enum CodingKeys: String, CodingKey { case event, sandboxID = "sandbox_id", hostID = "host_id", timestamp }

        /// The spec's event as an `AgentCapsuleEvent`; nil for an event name we do not act on.
        var agentEvent: AgentCapsuleEvent? {
            guard let event, let sandboxID else { return nil }
            let at = timestamp.map { Date(timeIntervalSince1970: TimeInterval($0)) } ?? Date()
            switch event {
            case "sandbox.auto_paused": return AgentCapsuleEvent(kind: "auto_paused", capsuleID: sandboxID, status: .paused, reason: "ttl_expired", at: at)
            case "sandbox.stopped": return AgentCapsuleEvent(kind: "stopped", capsuleID: sandboxID, status: .stopped, reason: nil, at: at)
            case "sandbox.error": return AgentCapsuleEvent(kind: "error", capsuleID: sandboxID, status: .error, reason: nil, at: at)
            default: return nil
            }
        }
    }

    func register(on router: Router<WrennRequestContext>) {
        router.post("v1/hosts/sandbox-events") { request, context in
            let hostID: String
            if let jwt = request.headers[.xHostToken], jwt.contains(".") {
                hostID = try await services.hostService.authenticate(jwt).id
            } else {
                guard let agent = services.config.agent else { throw ServiceError.unauthorized("invalid or missing host token") }
                let presented = request.headers[.authorization].map { BearerToken.parse($0).map(String.init) ?? "" }
                    ?? request.headers[.xHostToken] ?? ""
                guard !presented.isEmpty, Secrets.constantTimeEquals(presented, agent.token) else {
                    throw ServiceError.unauthorized("invalid host credential")
                }
                hostID = HostDirectory.localHostID
            }
            var request = request
            let buffer = try await request.collectBody(upTo: context.maxUploadSize)
            let data = Data(buffer.readableBytesView)
            let spec = try? JSONDecoder().decode(SpecBody.self, from: data)
            if let claimed = spec?.hostID, claimed != hostID {
                throw ServiceError.forbidden("host_id does not match the host token")
            }
            let event: AgentCapsuleEvent
            if let spec, spec.event != nil {
                guard spec.sandboxID?.isEmpty == false, spec.hostID != nil else {
                    throw ServiceError.invalid("event, sandbox_id and host_id are required")
                }
                guard let mapped = spec.agentEvent else {
                    return JSONResponse.noContent() // unknown event names are accepted (future-compatible)
                }
                event = mapped
            } else {
                do {
                    event = try context.requestDecoder.decode(AgentCapsuleEvent.self, from: data)
                } catch let error as DecodingError {
                    throw ServiceError.invalid(Request.describe(error))
                }
            }
            try await services.capsules.applyAgentEvent(event, hostID: hostID)
            return JSONResponse.noContent()
        }
    }
}
