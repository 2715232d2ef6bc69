import Foundation
import Hummingbird
import WrennWire

/// Tag `channels`: team notification channels (session only, like the original's JWT-only routes).
struct ChannelRoutes {
    let services: ControlPlaneServices

    func register(on router: Router<WrennRequestContext>) {
        let channels = router.group("v1/channels")
        channels.post { request, context in
            let principal = try context.requireSession(request)
            let body = try await request.decodeJSON(CreateChannelRequest.self, context: context)
            return try JSONResponse.make(try await services.channels.create(principal, body), status: .created)
        }
        channels.get { request, context in
            try JSONResponse.make(try await services.channels.list(try context.requireSession(request)))
        }
        channels.post("test") { request, context in
            let principal = try context.requireSession(request)
            let body = try await request.decodeJSON(TestChannelRequest.self, context: context)
            return try JSONResponse.make(try await services.channels.test(principal, body))
        }
        channels.get(":id") { request, context in
            let principal = try context.requireSession(request)
            return try JSONResponse.make(try await services.channels.get(principal, id: try context.parameters.require("id")))
        }
        channels.patch(":id") { request, context in
            let principal = try context.requireSession(request)
            let body = try await request.decodeJSON(UpdateChannelRequest.self, context: context)
            return try JSONResponse.make(try await services.channels.update(principal, id: try context.parameters.require("id"), body))
        }
        channels.delete(":id") { request, context in
            try await services.channels.delete(try context.requireSession(request), id: try context.parameters.require("id"))
            return JSONResponse.noContent()
        }
        channels.put(":id/config") { request, context in
            let principal = try context.requireSession(request)
            let body = try await request.decodeJSON(RotateChannelConfigRequest.self, context: context)
            return try JSONResponse.make(try await services.channels.rotateConfig(principal, id: try context.parameters.require("id"), body))
        }
    }
}
