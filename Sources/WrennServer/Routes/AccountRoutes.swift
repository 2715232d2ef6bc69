import Hummingbird
import WrennWire

/// Tags `account` and `me`: the caller's profile, sessions, passwords and linked OAuth providers.
struct AccountRoutes {
    let services: ControlPlaneServices

    func register(on router: Router<WrennRequestContext>) {
        let me = router.group("v1/me")
        me.get { request, context in
            try JSONResponse.make(try await services.accounts.me(try context.requireSession(request)))
        }
        me.patch { request, context in
            let principal = try context.requireSession(request)
            let body = try await request.decodeJSON(NameRequest.self, context: context)
            try await services.accounts.rename(principal, name: body.name)
            return JSONResponse.noContent()
        }
        me.delete { request, context in
            let principal = try context.requireSession(request)
            let body = try await request.decodeJSON(DeleteAccountRequest.self, context: context)
            try await services.accounts.deleteAccount(principal, confirmation: body.confirmation)
            var response = JSONResponse.noContent()
            SessionCookies.clear(secure: services.config.secureCookies, on: &response)
            return response
        }
        me.get("sessions") { request, context in
            try JSONResponse.make(SessionList(sessions: try await services.sessions.list(for: try context.requireSession(request))))
        }
        me.delete("sessions/:id") { request, context in
            let principal = try context.requireSession(request)
            try await services.accounts.revokeSession(principal, id: try context.parameters.require("id"))
            return JSONResponse.noContent()
        }
        me.post("password") { request, context in
            let principal = try context.requireSession(request)
            let body = try await request.decodeJSON(ChangePasswordRequest.self, context: context)
            try await services.accounts.changePassword(principal, body)
            var response = JSONResponse.noContent()
            SessionCookies.clear(secure: services.config.secureCookies, on: &response)
            return response
        }
        me.post("password/reset") { request, context in
            let body = try await request.decodeJSON(PasswordResetRequest.self, context: context)
            try await services.accounts.requestPasswordReset(email: body.email)
            return JSONResponse.noContent()
        }
        me.post("password/reset/confirm") { request, context in
            let body = try await request.decodeJSON(PasswordResetConfirmRequest.self, context: context)
            try await services.accounts.confirmPasswordReset(token: body.token, newPassword: body.newPassword)
            return JSONResponse.noContent()
        }
        me.get("providers/:provider/connect") { request, context in
            let principal = try context.requireSession(request)
            let start = try services.oauth.begin(provider: try context.parameters.require("provider"), intent: .link(principal))
            var response = try JSONResponse.make(AuthURLResponse(authURL: start.url))
            OAuthRoutes.setStateCookie(start.stateCookie, secure: services.config.secureCookies, on: &response)
            return response
        }
        me.delete("providers/:provider") { request, context in
            let principal = try context.requireSession(request)
            try await services.oauth.disconnect(principal, provider: try context.parameters.require("provider"))
            return JSONResponse.noContent()
        }
    }
}
