import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import WrennWire

/// Tag `hosts`: the registry (session-authenticated) and the agent-facing register/refresh/heartbeat endpoints.
/// `POST /v1/hosts/sandbox-events` is in `HostCallbackRoutes`.
struct HostRoutes {
    let services: ControlPlaneServices

    func register(on router: Router<WrennRequestContext>) {
        let hostService = services.hostService
        let hosts = router.group("v1/hosts")
        hosts.post { request, context in
            let principal = try context.requireSession(request)
            let body = try await request.decodeJSON(CreateHostRequest.self, context: context)
            return try JSONResponse.make(try await hostService.create(principal, body), status: .created)
        }
        hosts.get { request, context in
            try JSONResponse.make(try await hostService.list(try context.requireSession(request)))
        }
        hosts.post("register") { request, context in
            let body = try await request.decodeJSON(RegisterHostRequest.self, context: context)
            return try JSONResponse.make(try await hostService.register(body), status: .created)
        }
        hosts.post("auth/refresh") { request, context in
            let body = try await request.decodeJSON(RefreshHostTokenRequest.self, context: context)
            return try JSONResponse.make(try await hostService.refresh(body))
        }
        hosts.get(":id") { request, context in
            let principal = try context.requireSession(request)
            return try JSONResponse.make(try await hostService.get(principal, id: try context.parameters.require("id")))
        }
        hosts.delete(":id") { request, context in
            let principal = try context.requireSession(request)
            let force = request.uri.queryParameters.get("force").map { ["true", "1"].contains($0.lowercased()) } ?? false
            switch try await hostService.delete(principal, id: try context.parameters.require("id"), force: force) {
            case .deleted:
                return JSONResponse.noContent()
            case .hasCapsules(let ids):
                let body = HostHasCapsulesError(error: .init(
                    code: "host_has_sandboxes",
                    message: "host has \(ids.count) active capsule(s); destroy them or delete with ?force=true", sandboxIDs: ids))
                return try JSONResponse.make(body, status: .conflict)
            }
        }
        hosts.post(":id/token") { request, context in
            let principal = try context.requireSession(request)
            return try JSONResponse.make(try await hostService.regenerateToken(principal, id: try context.parameters.require("id")),
                                         status: .created)
        }
        hosts.post(":id/heartbeat") { request, context in
            let id = try context.parameters.require("id")
            var request = request
            let body = try await request.collectBody(upTo: context.maxUploadSize)
            // The body (the agent's capsule report) is optional.
            let report = body.readableBytes > 0 ? try? context.requestDecoder.decode(HostHeartbeat.self, from: Data(body.readableBytesView)) : nil
            try await hostService.heartbeat(token: request.headers[.xHostToken], hostID: id, report: report)
            return JSONResponse.noContent()
        }
        hosts.get(":id/delete-preview") { request, context in
            let principal = try context.requireSession(request)
            return try JSONResponse.make(try await hostService.deletePreview(principal, id: try context.parameters.require("id")))
        }
        hosts.get(":id/tags") { request, context in
            let principal = try context.requireSession(request)
            return try JSONResponse.make(try await hostService.tags(principal, id: try context.parameters.require("id")))
        }
        hosts.post(":id/tags") { request, context in
            let principal = try context.requireSession(request)
            let body = try await request.decodeJSON(AddTagRequest.self, context: context)
            try await hostService.addTag(principal, id: try context.parameters.require("id"), tag: body.tag)
            return JSONResponse.noContent()
        }
        hosts.delete(":id/tags/:tag") { request, context in
            let principal = try context.requireSession(request)
            try await hostService.removeTag(principal, id: try context.parameters.require("id"), tag: try context.parameters.require("tag"))
            return JSONResponse.noContent()
        }
    }
}
