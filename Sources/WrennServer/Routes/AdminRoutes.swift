import Foundation
import Hummingbird
import WrennWire

/// Tag `admin` (except capsules, `AdminCapsuleRoutes`, and builds): users, teams, templates, the cross-team audit log
/// and event stream. Platform admins only, by cookie session (CSRF on state changes): no session 401 (an API key acts
/// for a team, not a person, so it is no credential here), a session of anyone else 403.
struct AdminRoutes {
    let services: ControlPlaneServices

    func register(on router: Router<WrennRequestContext>) {
        let admin = router.group("v1/admin")
        admin.get("users") { request, context in
            try JSONResponse.make(try await services.admin.users(try context.requireSession(request)))
        }
        admin.put("users/:id/active") { request, context in
            let principal = try context.requireSession(request)
            let body = try await request.decodeJSON(SetUserActiveRequest.self, context: context)
            try await services.admin.setActive(principal, userID: try context.parameters.require("id"), active: body.active)
            return JSONResponse.noContent()
        }
        admin.put("users/:id/admin") { request, context in
            let principal = try context.requireSession(request)
            let body = try await request.decodeJSON(SetUserAdminRequest.self, context: context)
            try await services.admin.setAdmin(principal, userID: try context.parameters.require("id"), admin: body.admin)
            return JSONResponse.noContent()
        }

        admin.get("teams") { request, context in
            try JSONResponse.make(try await services.admin.teams(try context.requireSession(request)))
        }
        admin.put("teams/:id/byoc") { request, context in
            let principal = try context.requireSession(request)
            let body = try await request.decodeJSON(SetTeamBYOCRequest.self, context: context)
            try await services.admin.setBYOC(principal, teamID: try context.parameters.require("id"), byoc: body.byoc)
            return JSONResponse.noContent()
        }
        admin.delete("teams/:id") { request, context in
            try await services.admin.deleteTeam(try context.requireSession(request), teamID: try context.parameters.require("id"))
            return JSONResponse.noContent()
        }

        admin.get("templates") { request, context in
            try JSONResponse.make(try await services.admin.templates(try context.requireSession(request)))
        }
        admin.delete("templates/:name") { request, context in
            // `?team_id=` deletes a team's snapshot; without it, the platform template.
            try await services.admin.deleteTemplate(try context.requireSession(request), name: try context.parameters.require("name"),
                                                    team: request.uri.queryParameters.get("team_id"))
            return JSONResponse.noContent()
        }

        admin.get("audit-logs") { request, context in
            let principal = try context.requireSession(request)
            let query = try TeamRoutes.auditQuery(request)
            return try JSONResponse.make(try await services.admin.auditPage(principal, before: query.before, beforeID: query.beforeID,
                                                                            limit: query.limit))
        }
        admin.get("events/stream") { request, context -> Response in
            let principal = try context.requireSession(request)
            try services.admin.requireAdmin(principal)
            return try await EventRoutes(services: services).stream(request, team: nil, caller: principal)
        }
    }
}
