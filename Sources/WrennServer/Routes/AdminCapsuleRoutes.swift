import Foundation
import Hummingbird
import WrennWire

/// `/v1/admin/capsules…`: capsules of every team for platform admins (session only). Each route resolves the capsule
/// across teams and runs the team operation as the admin acting for the capsule's team (`AdminService.acting`); the
/// data plane (exec, processes, files, streams) is the team routes themselves, mounted under the admin prefix with an
/// admin `CapsuleScope`. Differences from the team API are the contract's: create and snapshot answer 201, destroy 204,
/// and an admin snapshot replaces a template of the same name. Every admin access into a capsule — reads included —
/// leaves an entry in the capsule team's audit log (`metadata.via = "admin"`).
struct AdminCapsuleRoutes {
    let services: ControlPlaneServices

    var scope: CapsuleScope {
        let admin = services.admin
        return CapsuleScope(prefix: "v1/admin/capsules/:id") { request, context in
            try await admin.actingPrincipal(try context.requireSession(request), capsuleID: try context.parameters.require("id"))
        }
    }

    func register(on router: Router<WrennRequestContext>) {
        let capsules = router.group("v1/admin/capsules")
        capsules.post { request, context in
            let principal = try context.requireSession(request)
            let body = try await request.decodeJSON(AdminCreateCapsule.self, context: context)
            return try JSONResponse.make(try await services.admin.createCapsule(principal, body.capsule, team: body.target.teamId),
                                         status: .created)
        }
        capsules.get { request, context in
            try JSONResponse.make(try await services.admin.capsules(try context.requireSession(request)))
        }

        let scope = scope
        let capsule = router.group(RouterPath(scope.prefix))
        capsule.get { request, context in
            let (principal, id) = try await acting(request, context)
            let found = try await services.capsules.get(principal, id: id)
            await services.dataPlane.record(principal, team: principal.teamID ?? "", capsule: id, action: "admin.view")
            return try JSONResponse.make(found)
        }
        capsule.delete { request, context in
            let (principal, id) = try await acting(request, context)
            try await services.capsules.destroy(principal, id: id)
            return JSONResponse.noContent()
        }
        capsule.post("snapshot") { request, context in
            let (principal, id) = try await acting(request, context)
            let body = try await request.decodeJSON(AdminSnapshotRequest.self, context: context)
            let template = try await services.snapshots.create(principal, CreateSnapshotRequest(sandboxID: id, name: body.name), overwrite: true)
            return try JSONResponse.make(template, status: .created)
        }
        capsule.get("metrics") { request, context in
            let (principal, id) = try await acting(request, context)
            let metrics = try await services.capsules.metrics(principal, id: id, range: request.uri.queryParameters.get("range"))
            await services.dataPlane.record(principal, team: principal.teamID ?? "", capsule: id, action: "admin.metrics")
            return try JSONResponse.make(metrics)
        }
        CapsuleDataRoutes(services: services, scope: scope).register(on: router)
        FileUploadRoutes(services: services, scope: scope).register(on: router)
    }

    /// The exec, PTY and process streams under the admin prefix.
    func registerStreams(on router: Router<WrennRequestContext>, webSocketRouter: Router<WrennRequestContext>) {
        CapsuleStreamRoutes(services: services, scope: scope).register(on: router, webSocketRouter: webSocketRouter)
    }

    func acting(_ request: Request, _ context: WrennRequestContext) async throws -> (Principal, String) {
        (try await scope.caller(request, context), try context.parameters.require("id"))
    }
}

/// `POST /v1/admin/capsules`: a `CreateCapsuleRequest` plus the optional `team_id` it is created for.
struct AdminCreateCapsule: Decodable {
    var capsule: CreateCapsuleRequest
    var target: AdminCapsuleTarget

    init(from decoder: any Decoder) throws {
        capsule = try CreateCapsuleRequest(from: decoder)
        target = try AdminCapsuleTarget(from: decoder)
    }
}
