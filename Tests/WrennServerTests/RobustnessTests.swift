import Foundation
import HTTPTypes
import NIOCore
import Testing
import WrennServer
import WrennWire

@Suite("errors: envelope shape, unknown routes, malformed input never 5xx")
struct RobustnessTests {
    /// Every operation of the account tags, with path parameters filled in.
    static func operations(team: String, user: String) -> [(HTTPRequest.Method, String)] {
        [
            (.post, "/v1/auth/signup"), (.post, "/v1/auth/activate"), (.post, "/v1/auth/login"), (.post, "/v1/auth/logout"),
            (.post, "/v1/auth/logout-all"), (.post, "/v1/auth/switch-team"), (.get, "/v1/me/sessions"), (.delete, "/v1/me/sessions/ses-x"),
            (.get, "/v1/me"), (.patch, "/v1/me"), (.delete, "/v1/me"), (.post, "/v1/me/password"), (.post, "/v1/me/password/reset"),
            (.post, "/v1/me/password/reset/confirm"), (.get, "/v1/me/providers/github/connect"), (.delete, "/v1/me/providers/github"),
            (.post, "/v1/api-keys"), (.get, "/v1/api-keys"), (.delete, "/v1/api-keys/key-x"), (.get, "/v1/users/search?email=%00%ff@"),
            (.get, "/v1/teams"), (.post, "/v1/teams"), (.get, "/v1/teams/\(team)"), (.patch, "/v1/teams/\(team)"),
            (.delete, "/v1/teams/\(team)x"), (.get, "/v1/teams/\(team)/members"), (.post, "/v1/teams/\(team)/members"),
            (.patch, "/v1/teams/\(team)/members/\(user)"), (.delete, "/v1/teams/\(team)/members/usr-x"), (.post, "/v1/teams/\(team)x/leave"),
            (.get, "/v1/audit-logs?before=%%%&before_id=1&limit=-1"), (.get, "/auth/oauth/github"),
            (.get, "/auth/oauth/github/callback?code=%ff&state=..."),
        ]
    }

    static let garbage: [String] = [
        "", "{", "null", "[]", "[1,2]", "\"str\"", "42", "{\"email\": []}", "{\"name\": {\"a\": 1}}", "{\"token\": null}",
        "{\"email\":\"\\u0000@x\",\"password\":\"\\ud800\",\"name\":\"\\n\"}", String(repeating: "[", count: 5000),
        "{\"role\": \"superuser\"}", "{\"team_id\": \"team-\(String(repeating: "z", count: 25))\"}", "\u{FEFF}{}",
        "{\"confirmation\": 1e309}", "{\"new_password\": \"\(String(repeating: "p", count: 5000))\"}",
    ]

    @Test(arguments: TestBackend.available)
    func malformedInputNeverCausesServerErrors(_ backend: TestBackend) async throws {
        try await TestControlPlane.run(backend) { cp in
            let b = try await cp.signedInUser(email: "fuzz@r.c")
            let team = try await b.get("/v1/teams").decode([TeamWithRole].self)[0].id
            let me = try await b.get("/v1/teams/\(team)/members").decode([TeamMember].self)[0].userId
            let anonymous = cp.browser()
            for (method, path) in Self.operations(team: team, user: me) {
                for body in Self.garbage {
                    for client in [b, anonymous] {
                        let r = try await client.send(path, method, body: ByteBuffer(string: body))
                        #expect(r.status.code < 500, "\(method) \(path) with body \(body.prefix(40)) → \(r.status.code)")
                        if r.status.code >= 400 {
                            #expect(r.errorCode != nil, "\(method) \(path) answered \(r.status.code) without the error envelope")
                        }
                    }
                }
            }
            // The account is intact afterwards (the garbage logged the browser out, but changed nothing else).
            let again = cp.browser()
            #expect(try await again.post("/v1/auth/login", json: ["email": "fuzz@r.c", "password": "correct horse"]).status == .ok)
            #expect(try await again.get("/v1/me").decode(MeResponse.self).name == "Test User")
        }
    }

    @Test func oversizedBodyIs413WithLimitInMessage() async throws {
        try await TestControlPlane.run(.sqlite) { cp in
            let big = "{\"email\":\"" + String(repeating: "a", count: 2 << 20) + "\"}"
            let r = try await cp.browser().post("/v1/auth/signup", raw: big)
            #expect(r.status == .contentTooLarge)
            #expect(r.errorCode == "too_large")
            #expect(r.errorMessage?.contains("1048576") == true)
        }
    }

    @Test func unknownRoutesAndSystemEndpoints() async throws {
        try await TestControlPlane.run(.sqlite) { cp in
            let b = cp.browser()
            let missing = try await b.get("/v1/nope")
            #expect(missing.status == .notFound)
            #expect(missing.errorCode == "not_found")
            #expect(try await b.send("/v1/teams", .put, body: nil).errorCode == "not_found")
            let health = try await b.get("/health")
            #expect(health.status == .ok)
            #expect(health.json["status"] as? String == "ok")
            let spec = try await b.get("/openapi.yaml")
            #expect(spec.status == .ok)
            #expect(String(buffer: spec.body).hasPrefix("openapi:"))
            #expect(String(buffer: spec.body).contains("/v1/capsules"))
            let metrics = try await b.get("/metrics")
            #expect(metrics.status == .ok)
            #expect(String(buffer: metrics.body).contains("wrenn_http_requests_total"))
        }
    }
}

@Suite("documented failures not covered elsewhere")
struct DocumentedFailureTests {
    @Test func sessionOnlyOperationsWithoutSessionAre401() async throws {
        try await TestControlPlane.run(.sqlite) { cp in
            let anon = cp.browser()
            for (method, path) in [("POST", "/v1/auth/logout"), ("POST", "/v1/auth/logout-all"), ("GET", "/v1/me/sessions"),
                                   ("POST", "/v1/api-keys"), ("GET", "/v1/api-keys"), ("GET", "/v1/teams"), ("GET", "/v1/audit-logs"),
                                   ("GET", "/v1/me/providers/github/connect")] {
                let r = try await anon.send(path, HTTPRequest.Method(method)!, body: method == "POST" ? ByteBuffer(string: "{}") : nil)
                #expect(r.status == .unauthorized, "\(method) \(path)")
                #expect(r.errorCode == "unauthorized")
            }
            // A configured-nowhere provider is 404 on connect too.
            let b = try await cp.signedInUser(email: "p@d.c")
            let connect = try await b.get("/v1/me/providers/github/connect")
            #expect(connect.status == .notFound)
            #expect(connect.errorCode == "provider_not_found")
            #expect(try await b.delete("/v1/me/providers/github").status == .notFound)
        }
    }

    @Test func cookiesAreSecureBehindHTTPS() async throws {
        try await TestControlPlane.run(.sqlite, configure: { $0.publicURL = "https://wrenn.example.com" }) { cp in
            let b = cp.browser()
            _ = try await b.post("/v1/auth/signup", json: ["email": "s@d.c", "password": "long enough", "name": "S"])
            let token = try await cp.lastMailToken(to: "s@d.c", path: "activate")
            let r = try await b.post("/v1/auth/activate", json: ["token": token])
            let cookies = r.headers[values: .setCookie]
            #expect(cookies.count == 2)
            #expect(cookies.allSatisfy { $0.contains("Secure") && $0.contains("SameSite=Strict") })
        }
    }
}
