import Hummingbird

/// `GET /auth/oauth/{provider}` and its callback (outside `/v1`, as the spec has them).
struct OAuthRoutes {
    static let stateCookie = "oauth_state"
    let services: ControlPlaneServices

    func register(on router: Router<WrennRequestContext>) {
        router.get("auth/oauth/:provider") { request, context in
            let start = try services.oauth.begin(provider: try context.parameters.require("provider"), intent: .login)
            var response = Response.redirect(to: start.url, type: .found)
            Self.setStateCookie(start.stateCookie, secure: services.config.secureCookies, on: &response)
            return response
        }
        router.get("auth/oauth/:provider/callback") { request, context in
            let query = request.uri.queryParameters
            let finish = await services.oauth.finish(
                provider: try context.parameters.require("provider"), code: query.get("code"), state: query.get("state"),
                providerError: query.get("error"), stateCookie: request.cookies[Self.stateCookie]?.value, origin: context.origin(request))
            var response = Response.redirect(to: finish.redirect, type: .found)
            response.setCookie(Cookie(name: Self.stateCookie, value: "", maxAge: 0, path: "/", secure: services.config.secureCookies,
                                      httpOnly: true, sameSite: .lax))
            if let issued = finish.session { SessionCookies.set(issued, secure: services.config.secureCookies, on: &response) }
            return response
        }
    }

    /// The signed state cookie: Lax so it survives the top-level redirect back from the provider.
    static func setStateCookie(_ value: String, secure: Bool, on response: inout Response) {
        response.setCookie(Cookie(name: stateCookie, value: value, maxAge: Int(OAuthService.stateLifetime), path: "/",
                                  secure: secure, httpOnly: true, sameSite: .lax))
    }
}
