import Foundation
import Hummingbird
import WrennWire

/// Tags `capsules` (lifecycle) and `snapshots`. Every route accepts an API key or a session (with CSRF).
struct CapsuleRoutes {
    let services: ControlPlaneServices

    func register(on router: Router<WrennRequestContext>) {
        let capsules = router.group("v1/capsules")
        capsules.post { request, context in
            let principal = try context.requireCaller(request)
            let body = try await request.decodeJSON(CreateCapsuleRequest.self, context: context)
            return try JSONResponse.make(try await services.capsules.create(principal, body), status: .accepted)
        }
        capsules.get { request, context in
            try JSONResponse.make(try await services.capsules.list(try context.requireCaller(request)))
        }
        capsules.get(":id") { request, context in
            let principal = try context.requireCaller(request)
            return try JSONResponse.make(try await services.capsules.get(principal, id: try context.parameters.require("id")))
        }
        capsules.delete(":id") { request, context in
            let principal = try context.requireCaller(request)
            try await services.capsules.destroy(principal, id: try context.parameters.require("id"))
            return Response(status: .accepted)
        }
        capsules.post(":id/pause") { request, context in
            let principal = try context.requireCaller(request)
            return try JSONResponse.make(try await services.capsules.pause(principal, id: try context.parameters.require("id")), status: .accepted)
        }
        capsules.post(":id/resume") { request, context in
            let principal = try context.requireCaller(request)
            return try JSONResponse.make(try await services.capsules.resume(principal, id: try context.parameters.require("id")), status: .accepted)
        }
        capsules.get(":id/metrics") { request, context in
            let principal = try context.requireCaller(request)
            return try JSONResponse.make(try await services.capsules.metrics(principal, id: try context.parameters.require("id"),
                                                                             range: request.uri.queryParameters.get("range")))
        }
        capsules.post(":id/ping") { request, context in
            let principal = try context.requireCaller(request)
            try await services.capsules.ping(principal, id: try context.parameters.require("id"))
            return JSONResponse.noContent()
        }

        let snapshots = router.group("v1/snapshots")
        snapshots.post { request, context in
            let principal = try context.requireCaller(request)
            let body = try await request.decodeJSON(CreateSnapshotRequest.self, context: context)
            let overwrite = request.uri.queryParameters.get("overwrite").map { $0 == "true" || $0 == "1" } ?? false
            return try JSONResponse.make(try await services.snapshots.create(principal, body, overwrite: overwrite), status: .created)
        }
        snapshots.get { request, context in
            let principal = try context.requireCaller(request)
            return try JSONResponse.make(try await services.snapshots.list(principal, type: request.uri.queryParameters.get("type")))
        }
        snapshots.delete(":name") { request, context in
            let principal = try context.requireCaller(request)
            try await services.snapshots.delete(principal, name: try context.parameters.require("name"))
            return JSONResponse.noContent()
        }
    }
}
