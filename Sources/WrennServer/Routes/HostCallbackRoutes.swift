import Foundation
import HTTPTypes
import Hummingbird
import WrennWire

/// `POST /v1/hosts/sandbox-events`: a host agent reports what it did on its own (TTL auto-pause, crash, stop).
///
/// A registered agent authenticates with its host JWT in `X-Host-Token`; the agent named in the configuration
/// (`host-local`) with the shared agent token as `Authorization: Bearer`. A `host_id` in the body must be the
/// token's host (403), and the capsule must belong to that host (404).
struct HostCallbackRoutes {
    let services: ControlPlaneServices

    /// The body fields the spec names beyond `AgentCapsuleEvent`.
    struct HostField: Decodable { var hostID: String?; enum CodingKeys: String, CodingKey { case hostID = "host_id" } }

    func register(on router: Router<WrennRequestContext>) {
        router.post("v1/hosts/sandbox-events") { request, context in
            let hostID: String
            if let jwt = request.headers[.xHostToken], jwt.contains(".") {
                hostID = try await services.hostService.authenticate(jwt).id
            } else {
                guard let agent = services.config.agent else { throw ServiceError.unauthorized("invalid or missing host token") }
                let presented = request.headers[.authorization].map { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : "" }
                    ?? request.headers[.xHostToken] ?? ""
                guard !presented.isEmpty, Secrets.constantTimeEquals(presented, agent.token) else {
                    throw ServiceError.unauthorized("invalid host credential")
                }
                hostID = HostDirectory.localHostID
            }
            var request = request
            let buffer = try await request.collectBody(upTo: context.maxUploadSize)
            let data = Data(buffer.readableBytesView)
            if let claimed = (try? JSONDecoder().decode(HostField.self, from: data))?.hostID, claimed != hostID {
                throw ServiceError.forbidden("host_id does not match the host token")
            }
            let event: AgentCapsuleEvent
            do {
                event = try context.requestDecoder.decode(AgentCapsuleEvent.self, from: data)
            } catch let error as DecodingError {
                throw ServiceError.invalid(Request.describe(error))
            }
            try await services.capsules.applyAgentEvent(event, hostID: hostID)
            return JSONResponse.noContent()
        }
    }
}
