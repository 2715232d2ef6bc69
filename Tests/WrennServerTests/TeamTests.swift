import Foundation
import Testing
import WrennServer
import WrennWire

@Suite("teams, members, roles, user search")
struct TeamTests {
    @Test(arguments: TestBackend.available)
    func createRenameDeleteAndRoles(_ backend: TestBackend) async throws {
        try await TestControlPlane.run(backend) { cp in
            let owner = try await cp.signedInUser(email: "o@t.c")
            let admin = try await cp.signedInUser(email: "a@t.c")
            let member = try await cp.signedInUser(email: "m@t.c")
            let outsider = try await cp.signedInUser(email: "x@t.c")

            #expect(try await owner.post("/v1/teams", json: ["name": "bad/name"]).status == .badRequest)
            #expect(try await owner.post("/v1/teams", json: ["name": "   "]).status == .badRequest)
            #expect(try await owner.post("/v1/teams", json: ["name": String(repeating: "a", count: 129)]).status == .badRequest)
            let created = try await owner.post("/v1/teams", json: ["name": "Rocket Team_1"])
            #expect(created.status == .created)
            let team = try created.decode(TeamWithRole.self)
            #expect(team.role == .owner)
            #expect(team.slug.count == 13)
            #expect(team.slug.dropFirst(6).first == "-")

            // Members are added by email; unknown address 404; duplicate 400.
            #expect(try await owner.post("/v1/teams/\(team.id)/members", json: ["email": "a@t.c"]).status == .created)
            #expect(try await owner.post("/v1/teams/\(team.id)/members", json: ["email": "m@t.c"]).status == .created)
            #expect(try await owner.post("/v1/teams/\(team.id)/members", json: ["email": "nobody@t.c"]).status == .notFound)
            #expect(try await owner.post("/v1/teams/\(team.id)/members", json: ["email": "m@t.c"]).status == .badRequest)

            let ids = Dictionary(uniqueKeysWithValues: try await owner.get("/v1/teams/\(team.id)/members").decode([TeamMember].self).map { ($0.email, $0.userId) })
            #expect(ids.count == 3)
            let ownerID = try #require(ids["o@t.c"]), adminID = try #require(ids["a@t.c"]), memberID = try #require(ids["m@t.c"])

            // Roles: owner promotes a@ to admin; a member cannot manage; nobody changes or removes the owner.
            #expect(try await owner.patch("/v1/teams/\(team.id)/members/\(adminID)", json: ["role": "admin"]).status == .noContent)
            #expect(try await owner.patch("/v1/teams/\(team.id)/members/\(adminID)", json: ["role": "owner"]).status == .badRequest)
            #expect(try await member.patch("/v1/teams/\(team.id)/members/\(adminID)", json: ["role": "member"]).status == .forbidden)
            #expect(try await member.patch("/v1/teams/\(team.id)", json: ["name": "Nope"]).status == .forbidden)
            #expect(try await admin.patch("/v1/teams/\(team.id)/members/\(ownerID)", json: ["role": "member"]).status == .forbidden)
            #expect(try await admin.delete("/v1/teams/\(team.id)/members/\(ownerID)").status == .forbidden)
            #expect(try await admin.patch("/v1/teams/\(team.id)/members/\(PrefixedID.make(.user))", json: ["role": "member"]).status == .notFound)
            #expect(try await admin.patch("/v1/teams/\(team.id)", json: ["name": "Renamed"]).status == .noContent)
            let detail = try await member.get("/v1/teams/\(team.id)").decode(TeamDetail.self)
            #expect(detail.team.name == "Renamed")
            #expect(detail.members.first { $0.userId == adminID }?.role == .admin)

            // Tenant isolation: an outsider sees nothing of the team, whatever the operation.
            #expect(try await outsider.get("/v1/teams/\(team.id)").status == .notFound)
            #expect(try await outsider.get("/v1/teams/\(team.id)/members").status == .notFound)
            #expect(try await outsider.patch("/v1/teams/\(team.id)", json: ["name": "Hijack"]).status == .notFound)
            #expect(try await outsider.post("/v1/teams/\(team.id)/members", json: ["email": "x@t.c"]).status == .notFound)
            #expect(try await outsider.delete("/v1/teams/\(team.id)").status == .notFound)
            #expect(try await outsider.post("/v1/teams/\(team.id)/leave").status == .notFound)
            #expect(try await outsider.get("/v1/teams/not-an-id").status == .notFound)

            // Leave: members may, the owner may not.
            #expect(try await owner.post("/v1/teams/\(team.id)/leave").status == .forbidden)
            #expect(try await member.post("/v1/teams/\(team.id)/leave").status == .noContent)
            #expect(try await member.get("/v1/teams/\(team.id)").status == .notFound)
            #expect(!(try await member.get("/v1/teams").decode([TeamWithRole].self).contains { $0.id == team.id }))
            // Remove: admin removes nobody who is gone; owner removes the admin.
            #expect(try await admin.delete("/v1/teams/\(team.id)/members/\(memberID)").status == .notFound)
            #expect(try await owner.delete("/v1/teams/\(team.id)/members/\(adminID)").status == .noContent)
            #expect(try await admin.get("/v1/teams/\(team.id)").status == .notFound)

            // Delete: owner only; afterwards the team is gone for everyone.
            #expect(try await owner.post("/v1/teams/\(team.id)/members", json: ["email": "a@t.c"]).status == .created)
            #expect(try await admin.delete("/v1/teams/\(team.id)").status == .forbidden)
            #expect(try await owner.delete("/v1/teams/\(team.id)").status == .noContent)
            #expect(try await owner.get("/v1/teams/\(team.id)").status == .notFound)
            #expect(try await owner.get("/v1/teams").decode([TeamWithRole].self).count == 1)
        }
    }

    @Test(arguments: TestBackend.available)
    func sessionOnDeletedTeamFallsBackToAnotherTeam(_ backend: TestBackend) async throws {
        try await TestControlPlane.run(backend) { cp in
            let b = try await cp.signedInUser(email: "fb@t.c")
            let home = try await b.get("/v1/teams").decode([TeamWithRole].self)[0]
            let extra = try await b.post("/v1/teams", json: ["name": "Temp"]).decode(TeamWithRole.self)
            #expect(try await b.post("/v1/auth/switch-team", json: ["team_id": extra.id]).status == .ok)
            #expect(try await b.delete("/v1/teams/\(extra.id)").status == .noContent)
            // The session keeps working, now on the home team: new keys land there.
            let key = try await b.post("/v1/api-keys", json: [:]).decode(APIKeyResponse.self)
            #expect(key.teamId == home.id)
            #expect(key.name == "Unnamed API Key")
        }
    }

    @Test(arguments: TestBackend.available)
    func userSearch(_ backend: TestBackend) async throws {
        try await TestControlPlane.run(backend) { cp in
            let b = try await cp.signedInUser(email: "searcher@s.c")
            for i in 0..<12 { _ = try await cp.signedInUser(email: "alice\(i)@s.c") }
            _ = try await cp.browser().post("/v1/auth/signup", json: ["email": "alice_inactive@s.c", "password": "long enough", "name": "I"])
            #expect(try await b.get("/v1/users/search?email=alice").status == .badRequest)
            #expect(try await b.get("/v1/users/search").status == .badRequest)
            let hits = try await b.get("/v1/users/search?email=alice1@").decode([UserSearchResult].self)
            #expect(hits.map(\.email) == ["alice1@s.c"])
            let many = try await b.get("/v1/users/search?email=%40s.c").decode([UserSearchResult].self)
            #expect(many.isEmpty) // prefix, not substring
            let capped = try await b.get("/v1/users/search?email=alice1%40").decode([UserSearchResult].self)
            #expect(capped.count == 1)
            #expect(try await cp.browser().get("/v1/users/search?email=a@").status == .unauthorized)
        }
    }
}
