import Hummingbird
import WrennWire

/// Tag `auth`: signup, activation, login, logout, switching teams.
struct AuthRoutes {
    let services: ControlPlaneServices

    func register(on router: Router<WrennRequestContext>) {
        let auth = router.group("v1/auth")
        auth.post("signup") { request, context in
            let body = try await request.decodeJSON(SignupRequest.self, context: context)
            return try JSONResponse.make(try await services.accounts.signup(body), status: .created)
        }
        auth.post("activate") { request, context in
            let body = try await request.decodeJSON(TokenRequest.self, context: context)
            let issued = try await services.accounts.activate(token: body.token, origin: context.origin(request))
            return try sessionResponse(issued)
        }
        auth.post("login") { request, context in
            let body = try await request.decodeJSON(LoginRequest.self, context: context)
            let issued = try await services.accounts.login(body, origin: context.origin(request))
            return try sessionResponse(issued)
        }
        auth.post("logout") { request, context in
            try await services.accounts.logout(try context.requireSession(request))
            return clearedCookies()
        }
        auth.post("logout-all") { request, context in
            try await services.accounts.logoutAll(try context.requireSession(request))
            return clearedCookies()
        }
        auth.post("switch-team") { request, context in
            let principal = try context.requireSession(request)
            let body = try await request.decodeJSON(SwitchTeamRequest.self, context: context)
            let issued = try await services.accounts.switchTeam(principal, teamID: body.teamId, origin: context.origin(request))
            return try sessionResponse(issued)
        }
    }

    func sessionResponse(_ issued: SessionService.Issued) throws -> Response {
        var response = try JSONResponse.make(issued.response)
        SessionCookies.set(issued, secure: services.config.secureCookies, on: &response)
        return response
    }

    func clearedCookies() -> Response {
        var response = JSONResponse.noContent()
        SessionCookies.clear(secure: services.config.secureCookies, on: &response)
        return response
    }
}
