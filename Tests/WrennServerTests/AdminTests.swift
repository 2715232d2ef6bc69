import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import SQLKit
import Testing
import WrennServer
import WrennWire

/// The admin API's users, teams, templates and audit log over real HTTP, on both databases. The first account to
/// become active is the platform admin (`alice`); `bob` is an ordinary user.
@Suite("admin: users, teams, templates, audit", .serialized)
struct AdminTests {
    static let adminGets = ["/v1/admin/users", "/v1/admin/teams", "/v1/admin/templates", "/v1/admin/capsules", "/v1/admin/audit-logs",
                            "/v1/admin/events/stream"]

    /// Runs `body` with the admin `alice` and the ordinary user `bob` signed in.
    static func withUsers(_ backend: TestBackend,
                          _ body: @Sendable @escaping (TestControlPlane, Browser, Browser) async throws -> Void) async throws {
        try await TestControlPlane.run(backend) { cp in
            let alice = try await cp.signedInUser(email: "alice@admin.test", name: "Alice")
            let bob = try await cp.signedInUser(email: "bob@admin.test", name: "Bob")
            try await body(cp, alice, bob)
        }
    }

    static func user(_ admin: Browser, _ email: String) async throws -> AdminUser {
        try #require(try await admin.get("/v1/admin/users").decode([AdminUser].self).first { $0.email == email })
    }

    static func team(_ admin: Browser, ownedBy email: String) async throws -> AdminTeam {
        try #require(try await admin.get("/v1/admin/teams").decode([AdminTeam].self).first { $0.ownerEmail == email })
    }

    static func put(_ browser: Browser, _ uri: String, _ json: [String: Any]) async throws -> TestResponse {
        try await browser.send(uri, .put, body: Browser.encode(json))
    }

    @Test(arguments: TestBackend.available)
    func onlyPlatformAdminsBySession(_ backend: TestBackend) async throws {
        try await Self.withUsers(backend) { cp, alice, bob in
            let anonymous = cp.browser()
            let key = try #require(try await alice.post("/v1/api-keys", json: ["name": "k"]).decode(APIKeyResponse.self).key)
            let program = cp.browser()
            program.apiKey = key
            for path in Self.adminGets where path != "/v1/admin/events/stream" {
                #expect(try await anonymous.get(path).status == .unauthorized, "\(path)")
                #expect(try await program.get(path).status == .unauthorized, "\(path) with an API key")
                let refused = try await bob.get(path)
                #expect(refused.status == .forbidden, "\(path)")
                #expect(refused.errorCode == "forbidden")
                #expect(try await alice.get(path).status == .ok, "\(path)")
            }
            #expect(try await anonymous.get("/v1/admin/events/stream").status == .unauthorized)
            #expect(try await bob.get("/v1/admin/events/stream").status == .forbidden)
            let bobUser = try await Self.user(alice, "bob@admin.test")
            for (uri, json) in [("/v1/admin/users/\(bobUser.id)/active", ["active": false]), ("/v1/admin/users/\(bobUser.id)/admin", ["admin": true])] {
                #expect(try await Self.put(anonymous, uri, json).status == .unauthorized)
                #expect(try await Self.put(bob, uri, json).status == .forbidden)
            }
            #expect(try await bob.delete("/v1/admin/teams/\(try await Self.team(alice, ownedBy: "alice@admin.test").id)").status == .forbidden)
            #expect(try await bob.delete("/v1/admin/templates/minimal").status == .forbidden)
            #expect(try await bob.post("/v1/admin/capsules", json: [:]).status == .forbidden)
            // State changes need the CSRF header like every session request.
            alice.sendCSRF = false
            let noCSRF = try await Self.put(alice, "/v1/admin/users/\(bobUser.id)/admin", ["admin": true])
            #expect(noCSRF.status == .forbidden && noCSRF.errorCode == "csrf_failed")
            alice.sendCSRF = true
            #expect(try await Self.user(alice, "bob@admin.test").isAdmin == false)
        }
    }

    @Test(arguments: TestBackend.available)
    func deactivationEndsSessionsAtOnce(_ backend: TestBackend) async throws {
        try await Self.withUsers(backend) { cp, alice, bob in
            let users = try await alice.get("/v1/admin/users").decode([AdminUser].self).sorted { $0.email < $1.email }
            #expect(users.map(\.email) == ["alice@admin.test", "bob@admin.test"])
            #expect(users.map(\.isAdmin) == [true, false])
            #expect(users.allSatisfy { $0.status == "active" })
            let bobID = users[1].id
            #expect(try await bob.get("/v1/me/sessions").status == .ok)

            #expect(try await Self.put(alice, "/v1/admin/users/\(bobID)/active", ["active": false]).status == .noContent)
            #expect(try await bob.get("/v1/me/sessions").status == .unauthorized) // the very next request
            #expect(try await Self.user(alice, "bob@admin.test").status == "disabled")
            let login = try await cp.browser().post("/v1/auth/login", json: ["email": "bob@admin.test", "password": "correct horse"])
            #expect(login.status == .forbidden)
            #expect(try await Self.put(alice, "/v1/admin/users/\(bobID)/active", ["active": true]).status == .noContent)
            #expect(try await cp.browser().post("/v1/auth/login", json: ["email": "bob@admin.test", "password": "correct horse"]).status == .ok)

            let aliceID = users[0].id
            let selfOff = try await Self.put(alice, "/v1/admin/users/\(aliceID)/active", ["active": false])
            #expect(selfOff.status == .badRequest)
            #expect(try await Self.put(alice, "/v1/admin/users/usr-00000000000000000000000000/active", ["active": false]).status == .notFound)
            #expect(try await Self.put(alice, "/v1/admin/users/\(bobID)/active", ["active": "no"]).status == .badRequest)
            #expect(try await Self.put(alice, "/v1/admin/users/\(bobID)/active", [:]).status == .badRequest)
        }
    }

    @Test(arguments: TestBackend.available)
    func grantAndRevokeAdminNeverTheLast(_ backend: TestBackend) async throws {
        try await Self.withUsers(backend) { cp, alice, bob in
            let aliceID = try await Self.user(alice, "alice@admin.test").id
            let bobID = try await Self.user(alice, "bob@admin.test").id
            let last = try await Self.put(alice, "/v1/admin/users/\(aliceID)/admin", ["admin": false])
            #expect(last.status == .badRequest)
            #expect(last.errorCode == "last_admin")

            #expect(try await bob.get("/v1/admin/users").status == .forbidden)
            cp.clock.advance(by: 1)
            #expect(try await Self.put(alice, "/v1/admin/users/\(bobID)/admin", ["admin": true]).status == .noContent)
            #expect(try await bob.get("/v1/admin/users").status == .ok) // no stale session state
            cp.clock.advance(by: 1)
            #expect(try await Self.put(bob, "/v1/admin/users/\(aliceID)/admin", ["admin": false]).status == .noContent)
            #expect(try await alice.get("/v1/admin/users").status == .forbidden)
            #expect(try await Self.put(bob, "/v1/admin/users/\(bobID)/admin", ["admin": false]).errorCode == "last_admin")
            #expect(try await Self.put(bob, "/v1/admin/users/usr-00000000000000000000000000/admin", ["admin": true]).status == .notFound)
            #expect(try await Self.put(bob, "/v1/admin/users/\(bobID)/admin", [:]).status == .badRequest)

            let audit = try await bob.get("/v1/admin/audit-logs").decode(AuditLogPage.self)
            #expect(audit.entries.prefix(2).map(\.action) == ["revoke_admin", "grant_admin"])
        }
    }

    @Test(arguments: TestBackend.available)
    func teamsListBYOCAndDelete(_ backend: TestBackend) async throws {
        try await Self.withUsers(backend) { cp, alice, bob in
            let teams = try await alice.get("/v1/admin/teams").decode([AdminTeam].self)
            #expect(teams.contains { $0.id == "team-0000000000000000000000000" && $0.ownerId == nil })
            let bobs = try await Self.team(alice, ownedBy: "bob@admin.test")
            #expect(bobs.memberCount == 1 && bobs.activeCapsules == 0 && !bobs.isByoc)

            #expect(try await Self.put(alice, "/v1/admin/teams/\(bobs.id)/byoc", ["byoc": true]).status == .noContent)
            #expect(try await Self.team(alice, ownedBy: "bob@admin.test").isByoc)
            #expect(try await Self.put(alice, "/v1/admin/teams/\(bobs.id)/byoc", ["byoc": false]).status == .noContent)
            #expect(try await !Self.team(alice, ownedBy: "bob@admin.test").isByoc)
            #expect(try await Self.put(alice, "/v1/admin/teams/\(bobs.id)/byoc", ["enabled": true]).status == .badRequest)
            #expect(try await Self.put(alice, "/v1/admin/teams/team-00000000000000000000000001/byoc", ["byoc": true]).status == .notFound)

            #expect(try await alice.delete("/v1/admin/teams/team-0000000000000000000000000").status == .badRequest)
            #expect(try await alice.delete("/v1/admin/teams/team-nope").status == .notFound)
            #expect(try await alice.delete("/v1/admin/teams/\(bobs.id)").status == .noContent)
            #expect(try await alice.delete("/v1/admin/teams/\(bobs.id)").status == .notFound)
            #expect(try await alice.get("/v1/admin/teams").decode([AdminTeam].self).allSatisfy { $0.id != bobs.id })
            // Soft-deleted: the row and its slug stay, so the slug is never handed out again.
            let row = try await cp.assembly.database.read { sql in
                try await sql.raw("SELECT slug, deleted_at FROM teams WHERE id = \(bind: bobs.id)").first()
            }
            #expect(try row?.decode(column: "slug", as: String.self) == bobs.slug)
            #expect(try row?.decode(column: "deleted_at", as: Int64?.self) != nil)
            #expect(try await bob.get("/v1/teams").decode([TeamWithRole].self).allSatisfy { $0.id != bobs.id })
        }
    }

    @Test(arguments: TestBackend.available)
    func templatesListAndDelete(_ backend: TestBackend) async throws {
        try await Self.withUsers(backend) { _, alice, bob in
            let templates = try await alice.get("/v1/admin/templates").decode([Template].self)
            #expect(templates.map(\.name) == ["minimal"])
            #expect(templates.first?.platform == true)
            #expect(try await alice.delete("/v1/admin/templates/nope").status == .notFound)
            #expect(try await bob.get("/v1/snapshots").decode([Template].self).map(\.name) == ["minimal"])
            // No agent is configured and no host is online: only the record goes.
            #expect(try await alice.delete("/v1/admin/templates/minimal").status == .noContent)
            #expect(try await alice.get("/v1/admin/templates").decode([Template].self).isEmpty)
            #expect(try await bob.get("/v1/snapshots").decode([Template].self).isEmpty)
        }
    }

    @Test(arguments: TestBackend.available)
    func auditLogAcrossTeamsPagesWithTheCursor(_ backend: TestBackend) async throws {
        try await Self.withUsers(backend) { cp, alice, _ in
            let bobs = try await Self.team(alice, ownedBy: "bob@admin.test")
            cp.clock.advance(by: 1)
            #expect(try await Self.put(alice, "/v1/admin/teams/\(bobs.id)/byoc", ["byoc": true]).status == .noContent)
            // Every team's entries, every scope: both teams' creation, both activations, the BYOC change.
            var seen: [AuditLogEntry] = []
            var uri = "/v1/admin/audit-logs?limit=2"
            while true {
                let page = try await alice.get(uri).decode(AuditLogPage.self)
                #expect(page.entries.count <= 2)
                seen += page.entries
                guard let next = page.nextCursor else { break }
                let before = WireCoding.formatDate(next.before).addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
                uri = "/v1/admin/audit-logs?limit=2&before=\(before)&before_id=\(next.beforeId)"
            }
            #expect(Set(seen.map(\.id)).count == seen.count)
            let all = try await cp.assembly.database.read { sql in
                try await sql.raw("SELECT COUNT(*) AS n FROM audit_logs").first(decodingColumn: "n", as: Int64.self)
            }
            #expect(Int64(seen.count) == all)
            #expect(seen.first?.action == "set_byoc")
            #expect(seen.filter { $0.action == "activate" }.count == 2)
            #expect(seen.filter { $0.resourceType == "team" && $0.action == "create" }.count == 2)
            #expect(try await alice.get("/v1/admin/audit-logs?limit=0").status == .badRequest)
            #expect(try await alice.get("/v1/admin/audit-logs?before=yesterday&before_id=x").status == .badRequest)
        }
    }

    @Test(arguments: TestBackend.available)
    func grantCommandMakesAnAdminFromTheHost(_ backend: TestBackend) async throws {
        try await Self.withUsers(backend) { cp, alice, bob in
            #expect(try await bob.get("/v1/admin/users").status == .forbidden)
            cp.clock.advance(by: 1)
            let id = try await AdminService.grant(email: " Bob@Admin.test ", database: cp.assembly.database, clock: cp.clock)
            #expect(id == (try await Self.user(alice, "bob@admin.test").id))
            #expect(try await bob.get("/v1/admin/users").status == .ok)
            #expect(try await AdminService.grant(email: "bob@admin.test", database: cp.assembly.database) == id) // idempotent
            await #expect(throws: ServiceError.self) { try await AdminService.grant(email: "nobody@admin.test", database: cp.assembly.database) }
            let entry = try await alice.get("/v1/admin/audit-logs?limit=1").decode(AuditLogPage.self).entries.first
            #expect(entry?.action == "grant_admin" && entry?.actorType == "system" && entry?.metadata["via"] == "cli")
        }
    }
}
