import HTTPTypes
import Hummingbird
import WrennWire

/// `POST /v1/hosts/sandbox-events`: a host agent reports what it did on its own (TTL auto-pause, crash, stop).
///
/// Authenticated with the agent's credential (today the shared agent token as `Authorization: Bearer`, or the
/// same value in `X-Host-Token`); the capsule must belong to that agent's host.
struct HostCallbackRoutes {
    let services: ControlPlaneServices

    func register(on router: Router<WrennRequestContext>) {
        router.post("v1/hosts/sandbox-events") { request, context in
            guard let agent = services.config.agent else { throw ServiceError.unauthorized("no host agent is configured") }
            let presented = request.headers[.authorization].map { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : "" }
                ?? request.headers[.xHostToken] ?? ""
            guard !presented.isEmpty, Secrets.constantTimeEquals(presented, agent.token) else {
                throw ServiceError.unauthorized("invalid host credential")
            }
            let event = try await request.decodeJSON(AgentCapsuleEvent.self, context: context)
            try await services.capsules.applyAgentEvent(event, hostID: HostDirectory.localHostID)
            return JSONResponse.noContent()
        }
    }
}
