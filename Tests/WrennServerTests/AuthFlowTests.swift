import Foundation
import HTTPTypes
import Testing
import WrennServer
import WrennWire

@Suite("auth: signup, activation, login, sessions, CSRF")
struct AuthFlowTests {
    @Test(arguments: TestBackend.available)
    func signupActivateLoginAndSessionCookies(_ backend: TestBackend) async throws {
        try await TestControlPlane.run(backend) { cp in
            let b = cp.browser()
            let signup = try await b.post("/v1/auth/signup", json: ["email": " Ana@Example.com ", "password": "hunter22!", "name": "Ana"])
            #expect(signup.status == .created)
            #expect(try signup.decode(SignupResponse.self).message.contains("activation"))
            // Inactive accounts cannot log in yet.
            let early = try await b.post("/v1/auth/login", json: ["email": "ana@example.com", "password": "hunter22!"])
            #expect(early.status == .forbidden)
            #expect(early.errorCode == "account_not_activated")

            let token = try await cp.lastMailToken(to: "ana@example.com", path: "activate")
            #expect(token.count == 32)
            let activated = try await b.post("/v1/auth/activate", json: ["token": token])
            #expect(activated.status == .ok)
            let session = try activated.decode(SessionResponse.self)
            #expect(session.email == "ana@example.com")
            #expect(session.role == "owner")
            #expect(session.isAdmin) // first active user of the installation
            #expect(session.userId.hasPrefix("usr-"))
            #expect(session.teamId.hasPrefix("team-"))
            let setCookies = activated.headers[values: .setCookie]
            let sid = try #require(setCookies.first { $0.hasPrefix("wrenn_sid=") })
            #expect(sid.contains("HttpOnly"))
            #expect(sid.contains("SameSite=Strict"))
            #expect(!sid.contains("Secure")) // public URL is plain http in this test
            let csrf = try #require(setCookies.first { $0.hasPrefix("wrenn_csrf=") })
            #expect(!csrf.contains("HttpOnly"))

            // The token is single use.
            let again = try await cp.browser().post("/v1/auth/activate", json: ["token": token])
            #expect(again.status == .badRequest)
            #expect(again.errorCode == "invalid_token")

            // The default team is "<name>'s Team".
            let teams = try await b.get("/v1/teams").decode([TeamWithRole].self)
            #expect(teams.map(\.name) == ["Ana's Team"])

            // Log in from a second browser.
            let other = cp.browser()
            let wrong = try await other.post("/v1/auth/login", json: ["email": "ana@example.com", "password": "nope-nope"])
            #expect(wrong.status == .unauthorized)
            #expect(wrong.errorCode == "unauthorized")
            let unknown = try await other.post("/v1/auth/login", json: ["email": "who@example.com", "password": "nope-nope"])
            #expect(unknown.status == .unauthorized)
            #expect(unknown.errorMessage == wrong.errorMessage) // no account enumeration
            let login = try await other.post("/v1/auth/login", json: ["email": "ANA@example.com", "password": "hunter22!"])
            #expect(login.status == .ok)
            #expect(try login.decode(SessionResponse.self).teamId == session.teamId)

            // Two sessions; each sees itself as current.
            let list = try await other.get("/v1/me/sessions").decode(SessionList.self)
            #expect(list.sessions.count == 2)
            #expect(list.sessions.filter(\.current).count == 1)

            // Logout ends only that session and clears its cookies.
            let logout = try await other.post("/v1/auth/logout")
            #expect(logout.status == .noContent)
            #expect(other.cookies["wrenn_sid"] == nil)
            #expect(try await b.get("/v1/me").status == .ok)
        }
    }

    @Test(arguments: TestBackend.available)
    func signupRules(_ backend: TestBackend) async throws {
        try await TestControlPlane.run(backend) { cp in
            let b = cp.browser()
            let badEmail = try await b.post("/v1/auth/signup", json: ["email": "no-at-sign", "password": "long enough", "name": "X"])
            #expect(badEmail.status == .badRequest)
            #expect(badEmail.errorMessage?.contains("email") == true)
            let short = try await b.post("/v1/auth/signup", json: ["email": "a@b.c", "password": "short", "name": "X"])
            #expect(short.status == .badRequest)
            #expect(short.errorMessage?.contains("password") == true)
            let missing = try await b.post("/v1/auth/signup", json: ["email": "a@b.c", "password": "long enough"])
            #expect(missing.status == .badRequest)
            #expect(missing.errorMessage == "missing field: name")
            let wrongType = try await b.post("/v1/auth/signup", json: ["email": "a@b.c", "password": 12345678, "name": "X"])
            #expect(wrongType.status == .badRequest)
            #expect(wrongType.errorMessage?.contains("password") == true)
            let longName = try await b.post("/v1/auth/signup", json: ["email": "a@b.c", "password": "long enough", "name": String(repeating: "n", count: 101)])
            #expect(longName.status == .badRequest)

            #expect(try await b.post("/v1/auth/signup", json: ["email": "dup@b.c", "password": "long enough", "name": "D"]).status == .created)
            let cooldown = try await b.post("/v1/auth/signup", json: ["email": "dup@b.c", "password": "long enough", "name": "D"])
            #expect(cooldown.status == .conflict)
            #expect(cooldown.errorCode == "signup_cooldown")
            // After the 30-minute activation window the old inactive signup is replaced, and its token dies with it.
            let oldToken = try await cp.lastMailToken(to: "dup@b.c", path: "activate")
            cp.clock.advance(by: 31 * 60)
            #expect(try await b.post("/v1/auth/signup", json: ["email": "dup@b.c", "password": "long enough", "name": "D"]).status == .created)
            #expect(try await b.post("/v1/auth/activate", json: ["token": oldToken]).errorCode == "invalid_token")
            let newToken = try await cp.lastMailToken(to: "dup@b.c", path: "activate")
            #expect(try await b.post("/v1/auth/activate", json: ["token": newToken]).status == .ok)
            let taken = try await cp.browser().post("/v1/auth/signup", json: ["email": "DUP@b.c", "password": "long enough", "name": "D"])
            #expect(taken.status == .conflict)
            #expect(taken.errorCode == "email_taken")
        }
    }

    @Test(arguments: TestBackend.available)
    func activationTokenExpiresAfter30Minutes(_ backend: TestBackend) async throws {
        try await TestControlPlane.run(backend) { cp in
            let b = cp.browser()
            _ = try await b.post("/v1/auth/signup", json: ["email": "late@b.c", "password": "long enough", "name": "L"])
            let token = try await cp.lastMailToken(to: "late@b.c", path: "activate")
            cp.clock.advance(by: 30 * 60 + 1)
            let r = try await b.post("/v1/auth/activate", json: ["token": token])
            #expect(r.status == .badRequest)
            #expect(r.errorCode == "invalid_token")
        }
    }

    @Test(arguments: TestBackend.available)
    func csrfIsRequiredOnCookieStateChangesOnly(_ backend: TestBackend) async throws {
        try await TestControlPlane.run(backend) { cp in
            let b = try await cp.signedInUser(email: "csrf@b.c")
            b.sendCSRF = false
            #expect(try await b.get("/v1/me").status == .ok) // GET needs no token
            let post = try await b.post("/v1/teams", json: ["name": "Blocked"])
            #expect(post.status == .forbidden)
            #expect(post.errorCode == "csrf_failed")
            // A header that does not match the cookie is refused too.
            let forged = try await b.send("/v1/teams", .post, body: Browser.encode(["name": "Blocked"]),
                                          extraHeaders: [HTTPField.Name("X-CSRF-Token")!: String(repeating: "0", count: 64)])
            #expect(forged.status == .forbidden)
            b.sendCSRF = true
            #expect(try await b.post("/v1/teams", json: ["name": "Allowed"]).status == .created)
            // API keys need no CSRF token (and carry no cookie).
            let key = try await b.post("/v1/api-keys", json: ["name": "k"]).decode(APIKeyResponse.self)
            #expect(key.key?.hasPrefix("wrn_") == true)
        }
    }

    @Test(arguments: TestBackend.available)
    func sessionsExpireWhenIdleAndAtAbsoluteLifetime(_ backend: TestBackend) async throws {
        try await TestControlPlane.run(backend) { cp in
            let idle = try await cp.signedInUser(email: "idle@b.c")
            cp.clock.advance(by: 5 * 3600)
            #expect(try await idle.get("/v1/me").status == .ok) // activity within 6 h keeps it alive
            cp.clock.advance(by: 6 * 3600 + 1)
            let expired = try await idle.get("/v1/me")
            #expect(expired.status == .unauthorized)

            let busy = cp.browser()
            #expect(try await busy.post("/v1/auth/login", json: ["email": "idle@b.c", "password": "correct horse"]).status == .ok)
            for _ in 0..<4 {
                cp.clock.advance(by: 5 * 3600)
                #expect(try await busy.get("/v1/me").status == .ok)
            }
            cp.clock.advance(by: 4 * 3600 + 1) // 24 h after creation, however active
            #expect(try await busy.get("/v1/me").status == .unauthorized)
        }
    }

    @Test(arguments: TestBackend.available)
    func logoutAllRevokeAndSwitchTeam(_ backend: TestBackend) async throws {
        try await TestControlPlane.run(backend) { cp in
            let a1 = try await cp.signedInUser(email: "multi@b.c")
            let a2 = cp.browser()
            #expect(try await a2.post("/v1/auth/login", json: ["email": "multi@b.c", "password": "correct horse"]).status == .ok)
            let sessions = try await a1.get("/v1/me/sessions").decode(SessionList.self).sessions
            let other = try #require(sessions.first { !$0.current })

            // Another user cannot revoke it.
            let mallory = try await cp.signedInUser(email: "mallory@b.c")
            let stolen = try await mallory.delete("/v1/me/sessions/\(other.id)")
            #expect(stolen.status == .notFound)
            #expect(try await a2.get("/v1/me").status == .ok)
            // Its owner can.
            #expect(try await a1.delete("/v1/me/sessions/\(other.id)").status == .noContent)
            #expect(try await a2.get("/v1/me").status == .unauthorized)

            // Switch team: rotates the session id, checks membership.
            let team = try await a1.post("/v1/teams", json: ["name": "Second"]).decode(TeamWithRole.self)
            let oldSID = try #require(a1.cookies["wrenn_sid"])
            let switched = try await a1.post("/v1/auth/switch-team", json: ["team_id": team.id])
            #expect(switched.status == .ok)
            #expect(try switched.decode(SessionResponse.self).teamId == team.id)
            #expect(a1.cookies["wrenn_sid"] != oldSID)
            let replay = cp.browser()
            replay.cookies = ["wrenn_sid": oldSID]
            #expect(try await replay.get("/v1/me").status == .unauthorized)
            let notMine = try await mallory.post("/v1/auth/switch-team", json: ["team_id": team.id])
            #expect(notMine.status == .forbidden)
            let missing = try await mallory.post("/v1/auth/switch-team", json: ["team_id": PrefixedID.make(.team)])
            #expect(missing.status == .notFound)

            // logout-all ends every session, the caller's included.
            #expect(try await a1.post("/v1/auth/logout-all").status == .noContent)
            #expect(try await a1.get("/v1/me").status == .unauthorized)
        }
    }
}
