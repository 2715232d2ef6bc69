import Foundation
import Testing
import WrennServer
import WrennWire

@Suite("API keys and the audit log")
struct APIKeyAndAuditTests {
    @Test(arguments: TestBackend.available)
    func apiKeyLifecycle(_ backend: TestBackend) async throws {
        try await TestControlPlane.run(backend) { cp in
            let b = try await cp.signedInUser(email: "keys@k.c")
            let created = try await b.post("/v1/api-keys", json: ["name": "deploy bot"])
            #expect(created.status == .created)
            let key = try created.decode(APIKeyResponse.self)
            let plaintext = try #require(key.key)
            #expect(plaintext.count == 36)
            #expect(plaintext.hasPrefix("wrn_"))
            #expect(plaintext.dropFirst(4).allSatisfy { "0123456789abcdef".contains($0) })
            #expect(key.keyPrefix == String(plaintext.prefix(10)))
            #expect(key.id.hasPrefix("key-"))
            #expect(key.lastUsed == nil)

            // Stored hashed: the plaintext appears nowhere in the database.
            let stored = try await cp.assembly.database.read { sql in
                try await sql.raw("SELECT key_hash FROM api_keys WHERE id = \(bind: key.id)").first(decodingColumn: "key_hash", as: String.self)
            }
            #expect(stored?.count == 64)
            #expect(stored != plaintext)

            let listed = try await b.get("/v1/api-keys").decode([APIKeyResponse].self)
            #expect(listed.count == 1)
            #expect(listed[0].key == nil)

            // The key authenticates API calls but not the session-only account operations.
            let program = cp.browser()
            program.apiKey = plaintext
            let denied = try await program.get("/v1/teams")
            #expect(denied.status == .unauthorized)
            let bogus = cp.browser()
            bogus.apiKey = "wrn_" + String(repeating: "0", count: 32)
            #expect(try await bogus.get("/v1/me").status == .unauthorized)
            // Use is recorded.
            cp.clock.advance(by: 5)
            let used = try await b.get("/v1/api-keys").decode([APIKeyResponse].self)[0]
            #expect(used.lastUsed != nil)

            // Another team cannot delete it.
            let other = try await cp.signedInUser(email: "other@k.c")
            #expect(try await other.delete("/v1/api-keys/\(key.id)").status == .notFound)
            #expect(try await other.get("/v1/api-keys").decode([APIKeyResponse].self).isEmpty)
            #expect(try await b.delete("/v1/api-keys/\(key.id)").status == .noContent)
            #expect(try await b.delete("/v1/api-keys/\(key.id)").status == .notFound)
            #expect(try await program.get("/v1/me").status == .unauthorized)
        }
    }

    @Test(arguments: TestBackend.available)
    func auditLogRecordsChangesAndPagesWithCursor(_ backend: TestBackend) async throws {
        try await TestControlPlane.run(backend) { cp in
            let owner = try await cp.signedInUser(email: "audit@a.c")
            let teamID = try await owner.get("/v1/teams").decode([TeamWithRole].self)[0].id
            for i in 0..<7 {
                cp.clock.advance(by: 1)
                _ = try await owner.post("/v1/api-keys", json: ["name": "k\(i)"])
            }
            _ = try await cp.signedInUser(email: "reader@a.c")
            #expect(try await owner.post("/v1/teams/\(teamID)/members", json: ["email": "reader@a.c"]).status == .created)
            #expect(try await owner.patch("/v1/teams/\(teamID)", json: ["name": "Audited"]).status == .noContent)

            var seen: [AuditLogEntry] = []
            var uri = "/v1/audit-logs?limit=3"
            while true {
                let page = try await owner.get(uri).decode(AuditLogPage.self)
                seen += page.entries
                guard let next = page.nextCursor else { break }
                let before = WireCoding.formatDate(next.before).addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
                uri = "/v1/audit-logs?limit=3&before=\(before)&before_id=\(next.beforeId)"
            }
            #expect(Set(seen.map(\.id)).count == seen.count) // no duplicates across pages
            #expect(seen.filter { $0.resourceType == "api_key" && $0.action == "create" }.count == 7)
            #expect(seen.contains { $0.action == "rename" && $0.metadata["to"] == "Audited" })
            #expect(seen.contains { $0.resourceType == "member" && $0.action == "add" })
            #expect(zip(seen, seen.dropFirst()).allSatisfy { $0.createdAt >= $1.createdAt })
            let first = try #require(seen.first { $0.resourceType == "api_key" })
            #expect(first.actorType == "user")
            #expect(first.actorName == "audit@a.c")
            #expect(first.status == "success")

            // A member sees team-scope entries, not admin-scope ones or the owner's account events.
            let reader = cp.browser()
            #expect(try await reader.post("/v1/auth/login", json: ["email": "reader@a.c", "password": "correct horse"]).status == .ok)
            #expect(try await reader.post("/v1/auth/switch-team", json: ["team_id": teamID]).status == .ok)
            let readerView = try await reader.get("/v1/audit-logs?limit=200").decode(AuditLogPage.self).entries
            #expect(readerView.allSatisfy { $0.scope == "team" || $0.actorName == "reader@a.c" })
            #expect(readerView.filter { $0.resourceType == "api_key" }.count == 7)

            #expect(try await owner.get("/v1/audit-logs?limit=0").status == .badRequest)
            #expect(try await owner.get("/v1/audit-logs?limit=201").status == .badRequest)
            #expect(try await owner.get("/v1/audit-logs?before=yesterday&before_id=x").status == .badRequest)
            #expect(try await owner.get("/v1/audit-logs?limit=abc").status == .badRequest)
        }
    }
}
