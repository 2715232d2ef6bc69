import Foundation
import Hummingbird
import WrennWire

/// Tag `teams`, plus `users` (member search) and `api-keys`.
struct TeamRoutes {
    let services: ControlPlaneServices

    func register(on router: Router<WrennRequestContext>) {
        let teams = router.group("v1/teams")
        teams.get { request, context in
            try JSONResponse.make(try await services.teams.list(try context.requireSession(request)))
        }
        teams.post { request, context in
            let principal = try context.requireSession(request)
            let body = try await request.decodeJSON(NameRequest.self, context: context)
            return try JSONResponse.make(try await services.teams.create(principal, name: body.name), status: .created)
        }
        teams.get(":id") { request, context in
            let principal = try context.requireSession(request)
            return try JSONResponse.make(try await services.teams.detail(principal, teamID: try context.parameters.require("id")))
        }
        teams.patch(":id") { request, context in
            let principal = try context.requireSession(request)
            let body = try await request.decodeJSON(NameRequest.self, context: context)
            try await services.teams.rename(principal, teamID: try context.parameters.require("id"), name: body.name)
            return JSONResponse.noContent()
        }
        teams.delete(":id") { request, context in
            try await services.teams.delete(try context.requireSession(request), teamID: try context.parameters.require("id"))
            return JSONResponse.noContent()
        }
        teams.get(":id/members") { request, context in
            let principal = try context.requireSession(request)
            return try JSONResponse.make(try await services.teams.members(principal, teamID: try context.parameters.require("id")))
        }
        teams.post(":id/members") { request, context in
            let principal = try context.requireSession(request)
            let body = try await request.decodeJSON(AddMemberRequest.self, context: context)
            let member = try await services.teams.addMember(principal, teamID: try context.parameters.require("id"), email: body.email)
            return try JSONResponse.make(member, status: .created)
        }
        teams.patch(":id/members/:uid") { request, context in
            let principal = try context.requireSession(request)
            let body = try await request.decodeJSON(UpdateRoleRequest.self, context: context)
            try await services.teams.setRole(principal, teamID: try context.parameters.require("id"),
                                             userID: try context.parameters.require("uid"), role: body.role)
            return JSONResponse.noContent()
        }
        teams.delete(":id/members/:uid") { request, context in
            let principal = try context.requireSession(request)
            try await services.teams.removeMember(principal, teamID: try context.parameters.require("id"),
                                                  userID: try context.parameters.require("uid"))
            return JSONResponse.noContent()
        }
        teams.post(":id/leave") { request, context in
            try await services.teams.leave(try context.requireSession(request), teamID: try context.parameters.require("id"))
            return JSONResponse.noContent()
        }

        router.get("v1/users/search") { request, context in
            let principal = try context.requireSession(request)
            guard let email = request.uri.queryParameters.get("email") else { throw ServiceError.invalid("missing query parameter: email") }
            return try JSONResponse.make(try await services.users.search(principal, emailPrefix: email))
        }

        let keys = router.group("v1/api-keys")
        keys.post { request, context in
            let principal = try context.requireSession(request)
            let body = try await request.decodeJSON(CreateAPIKeyRequest.self, context: context)
            return try JSONResponse.make(try await services.apiKeys.create(principal, name: body.name), status: .created)
        }
        keys.get { request, context in
            try JSONResponse.make(try await services.apiKeys.list(try context.requireSession(request)))
        }
        keys.delete(":id") { request, context in
            try await services.apiKeys.delete(try context.requireSession(request), id: try context.parameters.require("id"))
            return JSONResponse.noContent()
        }

        router.get("v1/audit-logs") { request, context in
            let principal = try context.requireSession(request)
            let query = try Self.auditQuery(request)
            return try JSONResponse.make(try await services.audit.page(for: principal, before: query.before, beforeID: query.beforeID,
                                                                       limit: query.limit))
        }
    }

    /// The audit log's cursor and page size (`before`, `before_id`, `limit`), shared with the admin audit log.
    static func auditQuery(_ request: Request) throws -> (before: Date?, beforeID: String?, limit: Int?) {
        let query = request.uri.queryParameters
        var before: Date?
        if let text = query.get("before") {
            guard let date = WireCoding.parseDate(text) else { throw ServiceError.invalid("before: must be an RFC 3339 date-time") }
            before = date
        }
        var limit: Int?
        if let text = query.get("limit") {
            guard let n = Int(text) else { throw ServiceError.invalid("limit: must be an integer") }
            limit = n
        }
        return (before, query.get("before_id"), limit)
    }
}
