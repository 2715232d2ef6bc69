import Foundation
import Testing
import WrennServer
import WrennWire

@Suite("account: profile, passwords, deletion")
struct AccountTests {
    @Test(arguments: TestBackend.available)
    func profileRename(_ backend: TestBackend) async throws {
        try await TestControlPlane.run(backend) { cp in
            let b = try await cp.signedInUser(email: "me@b.c", name: "Me")
            let me = try await b.get("/v1/me").decode(MeResponse.self)
            #expect(me == MeResponse(name: "Me", email: "me@b.c", hasPassword: true, providers: []))
            #expect(try await b.patch("/v1/me", json: ["name": "  New Name "]).status == .noContent)
            #expect(try await b.get("/v1/me").decode(MeResponse.self).name == "New Name")
            #expect(try await b.patch("/v1/me", json: ["name": ""]).status == .badRequest)
            #expect(try await b.patch("/v1/me", json: ["name": String(repeating: "x", count: 101)]).status == .badRequest)
            #expect(try await cp.browser().get("/v1/me").status == .unauthorized)
        }
    }

    @Test(arguments: TestBackend.available)
    func changePasswordLogsOutEverywhere(_ backend: TestBackend) async throws {
        try await TestControlPlane.run(backend) { cp in
            let b = try await cp.signedInUser(email: "pw@b.c")
            let other = cp.browser()
            #expect(try await other.post("/v1/auth/login", json: ["email": "pw@b.c", "password": "correct horse"]).status == .ok)
            let missing = try await b.post("/v1/me/password", json: ["new_password": "battery staple"])
            #expect(missing.status == .badRequest)
            let wrong = try await b.post("/v1/me/password", json: ["current_password": "nope nope", "new_password": "battery staple"])
            #expect(wrong.status == .unauthorized)
            #expect(wrong.errorCode == "wrong_password")
            let short = try await b.post("/v1/me/password", json: ["current_password": "correct horse", "new_password": "short"])
            #expect(short.status == .badRequest)
            let ok = try await b.post("/v1/me/password", json: ["current_password": "correct horse", "new_password": "battery staple"])
            #expect(ok.status == .noContent)
            #expect(try await other.get("/v1/me").status == .unauthorized)
            #expect(try await cp.browser().post("/v1/auth/login", json: ["email": "pw@b.c", "password": "correct horse"]).status == .unauthorized)
            #expect(try await cp.browser().post("/v1/auth/login", json: ["email": "pw@b.c", "password": "battery staple"]).status == .ok)
        }
    }

    @Test(arguments: TestBackend.available)
    func passwordResetFlow(_ backend: TestBackend) async throws {
        try await TestControlPlane.run(backend) { cp in
            let b = try await cp.signedInUser(email: "reset@b.c")
            let anon = cp.browser()
            // Unknown addresses get the same answer and no mail.
            #expect(try await anon.post("/v1/me/password/reset", json: ["email": "ghost@b.c"]).status == .noContent)
            #expect(try await anon.post("/v1/me/password/reset", json: ["email": "not an email"]).status == .noContent)
            await #expect(throws: (any Error).self) { try await cp.lastMailToken(to: "ghost@b.c", path: "reset-password") }

            #expect(try await anon.post("/v1/me/password/reset", json: ["email": "Reset@B.c"]).status == .noContent)
            let token = try await cp.lastMailToken(to: "reset@b.c", path: "reset-password")
            let short = try await anon.post("/v1/me/password/reset/confirm", json: ["token": token, "new_password": "short"])
            #expect(short.status == .badRequest)
            let ok = try await anon.post("/v1/me/password/reset/confirm", json: ["token": token, "new_password": "brand new pass"])
            #expect(ok.status == .noContent)
            #expect(try await b.get("/v1/me").status == .unauthorized) // all sessions ended
            let reuse = try await anon.post("/v1/me/password/reset/confirm", json: ["token": token, "new_password": "another pass"])
            #expect(reuse.status == .badRequest)
            #expect(reuse.errorCode == "invalid_token")
            #expect(try await anon.post("/v1/auth/login", json: ["email": "reset@b.c", "password": "brand new pass"]).status == .ok)

            // A reset link dies after 15 minutes.
            cp.clock.advance(by: 1)
            #expect(try await anon.post("/v1/me/password/reset", json: ["email": "reset@b.c"]).status == .noContent)
            let late = try await cp.lastMailToken(to: "reset@b.c", path: "reset-password")
            cp.clock.advance(by: 15 * 60 + 1)
            #expect(try await anon.post("/v1/me/password/reset/confirm", json: ["token": late, "new_password": "too late pass"]).errorCode == "invalid_token")
        }
    }

    @Test(arguments: TestBackend.available)
    func deleteAccountRulesAndPurge(_ backend: TestBackend) async throws {
        try await TestControlPlane.run(backend) { cp in
            let owner = try await cp.signedInUser(email: "owner@b.c")
            _ = try await cp.signedInUser(email: "member@b.c")
            let teamID = try await owner.get("/v1/teams").decode([TeamWithRole].self)[0].id
            #expect(try await owner.post("/v1/teams/\(teamID)/members", json: ["email": "member@b.c"]).status == .created)

            let mismatch = try await owner.delete("/v1/me", json: ["confirmation": "someone@else.c"])
            #expect(mismatch.status == .badRequest)
            let blocked = try await owner.delete("/v1/me", json: ["confirmation": "OWNER@b.c"])
            #expect(blocked.status == .conflict)
            #expect(blocked.errorCode == "owns_team_with_members")

            let loner = try await cp.signedInUser(email: "loner@b.c")
            let lonerTeam = try await loner.get("/v1/teams").decode([TeamWithRole].self)[0].id
            let key = try await loner.post("/v1/api-keys", json: ["name": "ci"]).decode(APIKeyResponse.self)
            #expect(try await loner.delete("/v1/me", json: ["confirmation": "Loner@B.c"]).status == .noContent)
            #expect(try await loner.get("/v1/me").status == .unauthorized)
            #expect(try await cp.browser().post("/v1/auth/login", json: ["email": "loner@b.c", "password": "correct horse"]).status == .unauthorized)
            // The team they owned alone is gone, and so is its API key.
            let keyCaller = cp.browser()
            keyCaller.apiKey = key.key
            #expect(try await keyCaller.get("/v1/me").status == .unauthorized)
            #expect(try await owner.get("/v1/teams/\(lonerTeam)").status == .notFound)

            // The address stays taken during the 15-day grace period, then the account is purged.
            #expect(try await cp.browser().post("/v1/auth/signup", json: ["email": "loner@b.c", "password": "long enough", "name": "L"]).errorCode == "email_taken")
            cp.clock.advance(by: 14 * 24 * 3600)
            #expect(try await cp.assembly.services.accounts.purgeDeletedAccounts() == 0)
            cp.clock.advance(by: 2 * 24 * 3600)
            #expect(try await cp.assembly.services.accounts.purgeDeletedAccounts() == 1)
            #expect(try await cp.browser().post("/v1/auth/signup", json: ["email": "loner@b.c", "password": "long enough", "name": "L"]).status == .created)
        }
    }
}
