import AsyncHTTPClient
import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing
import WrennServer
import WrennWire

@Suite("OAuth with a GitHub-shaped provider over real HTTP")
struct OAuthTests {
    /// Runs a control plane configured against a local provider.
    static func withProvider(_ backend: TestBackend, _ body: @Sendable @escaping (TestControlPlane, LocalOAuthProvider, String) async throws -> Void) async throws {
        let provider = LocalOAuthProvider()
        try await provider.run { base in
            try await TestControlPlane.run(backend, configure: { config in
                config.github = .init(clientID: LocalOAuthProvider.clientID, clientSecret: LocalOAuthProvider.clientSecret,
                                      authorizeURL: "\(base)/login/oauth/authorize", tokenURL: "\(base)/login/oauth/access_token", apiURL: base)
            }) { cp in try await body(cp, provider, base) }
        }
    }

    /// Follows the provider's authorize URL (without following its redirect) and returns the callback path+query.
    static func authorize(_ url: String) async throws -> String {
        var request = HTTPClientRequest(url: url)
        request.method = .GET
        let client = HTTPClient(configuration: .init(redirectConfiguration: .disallow))
        defer { Task { try? await client.shutdown() } }
        let response = try await client.execute(request, timeout: .seconds(10))
        #expect(response.status.code == 302)
        let location = try #require(response.headers.first(name: "location"))
        let components = try #require(URLComponents(string: location))
        #expect(components.host == "localhost") // the control plane's public URL
        return components.path + "?" + (components.percentEncodedQuery ?? "")
    }

    static func location(_ r: TestResponse) -> String { r.headers[.location] ?? "" }

    @Test(arguments: TestBackend.available)
    func signInCreatesAccountAndLogsIn(_ backend: TestBackend) async throws {
        try await Self.withProvider(backend) { cp, provider, _ in
            provider.willAuthorize(.init(id: 4242, login: "octo", name: "Octo Cat", email: nil, privateEmail: "Octo@Example.com"))
            let b = cp.browser()
            let start = try await b.get("/auth/oauth/github")
            #expect(start.status == .found)
            let authorizeURL = Self.location(start)
            #expect(authorizeURL.contains("client_id=test-client"))
            #expect(b.cookies["oauth_state"] != nil)
            let callback = try await Self.authorize(authorizeURL)
            let done = try await b.get(callback)
            #expect(done.status == .found)
            #expect(Self.location(done) == "http://app.localhost/auth/github/callback")
            let me = try await b.get("/v1/me").decode(MeResponse.self)
            #expect(me == MeResponse(name: "Octo Cat", email: "octo@example.com", hasPassword: false, providers: ["github"]))
            #expect(try await b.get("/v1/teams").decode([TeamWithRole].self).map(\.name) == ["Octo Cat's Team"])

            // Signing in again with the same identity reaches the same account.
            provider.willAuthorize(.init(id: 4242, login: "octo", name: "Renamed", email: "changed@example.com", privateEmail: nil))
            let again = cp.browser()
            let cb2 = try await Self.authorize(Self.location(try await again.get("/auth/oauth/github")))
            #expect(Self.location(try await again.get(cb2)) == "http://app.localhost/auth/github/callback")
            #expect(try await again.get("/v1/me").decode(MeResponse.self).email == "octo@example.com")

            // OAuth-only accounts cannot drop their only login method, but can add a password first.
            let last = try await b.delete("/v1/me/providers/github")
            #expect(last.status == .badRequest)
            #expect(last.errorCode == "last_login_method")
            #expect(try await b.post("/v1/me/password", json: ["new_password": "now a password", "confirm_password": "mismatch!!"]).status == .badRequest)
            #expect(try await b.post("/v1/me/password", json: ["new_password": "now a password", "confirm_password": "now a password"]).status == .noContent)
            #expect(try await b.post("/v1/auth/login", json: ["email": "octo@example.com", "password": "now a password"]).status == .ok)
            #expect(try await b.delete("/v1/me/providers/github").status == .noContent)
            #expect(try await b.delete("/v1/me/providers/github").status == .notFound)
        }
    }

    @Test(arguments: TestBackend.available)
    func failuresRedirectWithErrorCodes(_ backend: TestBackend) async throws {
        try await Self.withProvider(backend) { cp, provider, base in
            let b = cp.browser()
            // Forged state.
            let start = Self.location(try await b.get("/auth/oauth/github"))
            provider.willAuthorize(.init(id: 1, login: "u", name: nil, email: "u@example.com", privateEmail: nil))
            let callback = try await Self.authorize(start)
            let forged = callback.replacingOccurrences(of: "state=", with: "state=00")
            #expect(Self.location(try await b.get(forged)).hasSuffix("?error=invalid_state"))
            // No state cookie at all (another browser).
            #expect(Self.location(try await cp.browser().get(callback)).hasSuffix("?error=invalid_state"))
            // Missing code, denied, and a code the provider does not know.
            // Each flow's state is single use, so every case starts a new one.
            func freshState() async throws -> String {
                let start = Self.location(try await b.get("/auth/oauth/github"))
                return try #require(URLComponents(string: start)?.queryItems?.first { $0.name == "state" }?.value)
            }
            #expect(Self.location(try await b.get("/auth/oauth/github/callback?state=\(try await freshState())")).hasSuffix("?error=missing_code"))
            #expect(Self.location(try await b.get("/auth/oauth/github/callback?state=\(try await freshState())&error=access_denied")).hasSuffix("?error=access_denied"))
            #expect(Self.location(try await b.get("/auth/oauth/github/callback?state=\(try await freshState())&code=bogus")).hasSuffix("?error=exchange_failed"))
            let used = try await freshState()
            #expect(Self.location(try await b.get("/auth/oauth/github/callback?state=\(used)&code=bogus")).hasSuffix("?error=exchange_failed"))
            #expect(Self.location(try await b.get("/auth/oauth/github/callback?state=\(used)&code=bogus")).hasSuffix("?error=invalid_state"))
            // Expired state cookie.
            let state = try await freshState()
            cp.clock.advance(by: 601)
            #expect(Self.location(try await b.get("/auth/oauth/github/callback?state=\(state)&code=x")).hasSuffix("?error=invalid_state"))
            #expect(b.cookies["wrenn_sid"] == nil)

            // An address that already has a password account is not taken over.
            _ = try await cp.signedInUser(email: "taken@example.com")
            provider.willAuthorize(.init(id: 77, login: "t", name: "T", email: "taken@example.com", privateEmail: nil))
            let c = cp.browser()
            let cb = try await Self.authorize(Self.location(try await c.get("/auth/oauth/github")))
            #expect(Self.location(try await c.get(cb)).hasSuffix("?error=email_taken"))
            // Unknown provider.
            let unknown = try await c.get("/auth/oauth/gitlab")
            #expect(unknown.status == .notFound)
            #expect(unknown.errorCode == "provider_not_found")
            _ = base
        }
    }

    @Test(arguments: TestBackend.available)
    func connectLinksToTheSignedInAccount(_ backend: TestBackend) async throws {
        try await Self.withProvider(backend) { cp, provider, _ in
            let b = try await cp.signedInUser(email: "linker@example.com")
            let connect = try await b.get("/v1/me/providers/github/connect")
            #expect(connect.status == .ok)
            let url = try connect.decode(AuthURLResponse.self).authURL
            provider.willAuthorize(.init(id: 9001, login: "linker", name: nil, email: "different@example.com", privateEmail: nil))
            let done = try await b.get(try await Self.authorize(url))
            #expect(Self.location(done) == "http://app.localhost/dashboard/settings?connected=github")
            #expect(try await b.get("/v1/me").decode(MeResponse.self).providers == ["github"])
            // The linked identity now signs in to this account.
            provider.willAuthorize(.init(id: 9001, login: "linker", name: nil, email: "different@example.com", privateEmail: nil))
            let fresh = cp.browser()
            _ = try await fresh.get(try await Self.authorize(Self.location(try await fresh.get("/auth/oauth/github"))))
            #expect(try await fresh.get("/v1/me").decode(MeResponse.self).email == "linker@example.com")
            // The same identity cannot be linked to a second account.
            let other = try await cp.signedInUser(email: "second@example.com")
            let url2 = try await other.get("/v1/me/providers/github/connect").decode(AuthURLResponse.self).authURL
            provider.willAuthorize(.init(id: 9001, login: "linker", name: nil, email: nil, privateEmail: "x@example.com"))
            #expect(Self.location(try await other.get(try await Self.authorize(url2))).hasSuffix("connect_error=already_linked"))
            // Without a session there is no connect.
            #expect(try await cp.browser().get("/v1/me/providers/github/connect").status == .unauthorized)
        }
    }
}
