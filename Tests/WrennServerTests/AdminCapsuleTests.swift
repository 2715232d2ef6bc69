import Foundation
import HTTPTypes
import HummingbirdTesting
import HummingbirdWSClient
import Logging
import NIOCore
import SQLKit
import Testing
import WrennServer
import WrennTestSupport
import WrennWire

/// `/v1/admin/capsules…` and admin team deletion end to end: a real control plane, a real host agent
/// (`EnvdBackedRuntime`: real envd on loopback) and two teams — the admin `alice`'s and `bob`'s.
@Suite("admin: capsules of every team", .serialized)
struct AdminCapsuleTests {
    struct Setup {
        var cp: TestControlPlane
        var alice: Browser
        var bob: Browser
        /// An API key of bob's team.
        var bobSDK: Browser
        var bobTeam: String
    }

    static func withTeams(_ backend: TestBackend, _ body: @Sendable @escaping (Setup) async throws -> Void) async throws {
        let agent = try await LocalAgent.start()
        do {
            try await TestControlPlane.run(backend, configure: { $0.agent = .init(url: agent.baseURL, token: agent.token) }) { cp in
                let alice = try await cp.signedInUser(email: "alice@admin.test")
                let bob = try await cp.signedInUser(email: "bob@admin.test")
                let key = try #require(try await bob.post("/v1/api-keys", json: ["name": "sdk"]).decode(APIKeyResponse.self).key)
                let sdk = cp.browser()
                sdk.apiKey = key
                let team = try #require(try await bob.get("/v1/teams").decode([TeamWithRole].self).first?.id)
                try await body(Setup(cp: cp, alice: alice, bob: bob, bobSDK: sdk, bobTeam: team))
            }
        } catch {
            await agent.stop()
            throw error
        }
        await agent.stop()
    }

    /// Polls through the admin API until the capsule is `status`.
    static func wait(_ admin: Browser, _ id: String, for status: CapsuleStatus) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while try await admin.get("/v1/admin/capsules/\(id)").decode(Capsule.self).status != status {
            if ContinuousClock.now > deadline { throw TestBackendError("capsule \(id) never became \(status)") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    static func auditMetadata(_ cp: TestControlPlane, team: String, action: String) async throws -> [String] {
        try await cp.assembly.database.read { sql in
            try await sql.raw("SELECT metadata FROM audit_logs WHERE team_id = \(bind: team) AND action = \(bind: action)")
                .all(decodingColumn: "metadata", as: String.self)
        }
    }

    @Test(arguments: TestBackend.available)
    func adminWorksOnAnotherTeamsCapsule(_ backend: TestBackend) async throws {
        try await Self.withTeams(backend) { s in
            let capsule = try await s.bobSDK.post("/v1/capsules", json: [:]).decode(Capsule.self)
            _ = try await CapsuleAPITests.wait(s.bobSDK, capsule.id, for: .running)
            let base = "/v1/admin/capsules/\(capsule.id)"
            // Not for bob, not without a session; unknown capsules are 404.
            #expect(try await s.bob.get(base).status == .forbidden)
            #expect(try await s.bob.post("\(base)/exec", json: ["cmd": "true"]).status == .forbidden)
            #expect(try await s.bobSDK.get(base).status == .unauthorized)
            #expect(try await s.cp.browser().post("\(base)/files/list", json: ["path": "/"]).status == .unauthorized)
            #expect(try await s.alice.get("/v1/admin/capsules/cl-00000000000000000000000000").status == .notFound)
            #expect(try await s.alice.get("/v1/capsules/\(capsule.id)").status == .notFound) // the team API stays team-scoped

            #expect(try await s.alice.get("/v1/admin/capsules").decode([Capsule].self).map(\.id) == [capsule.id])
            #expect(try await s.alice.get(base).decode(Capsule.self).status == .running)
            let exec = try await s.alice.post("\(base)/exec", json: ["cmd": "/bin/sh", "args": ["-c", "echo admin was here"]])
            #expect(exec.status == .ok)
            #expect(try exec.decode(ExecResponse.self).stdout == "admin was here\n")
            let bg = try await s.alice.post("\(base)/exec", json: ["cmd": "/bin/sh", "args": ["-c", "sleep 300"], "background": true, "tag": "nap"])
            #expect(bg.status == .accepted)
            #expect(try await s.alice.get("\(base)/processes").decode(ProcessListResponse.self).processes.contains { $0.tag == "nap" })
            #expect(try await s.alice.delete("\(base)/processes/nap").status == .noContent)
            #expect(try await s.alice.delete("\(base)/processes/never-started").status == .notFound)
            #expect(try await s.alice.get("\(base)/metrics?range=5m").decode(CapsuleMetrics.self).sandboxID == capsule.id)

            // Files: write (multipart), read, list, mkdir, remove — and bob sees what the admin wrote.
            let dir = NSTemporaryDirectory() + "wrenn-admin-" + UUID().uuidString.prefix(8)
            let (body, boundary) = CapsuleAPITests.multipart(path: "\(dir)/a.txt", file: ByteBuffer(string: "from admin"), pathFirst: true)
            let upload = try await s.alice.send("\(base)/files/write", .post, body: body,
                                                extraHeaders: [.contentType: "multipart/form-data; boundary=\(boundary)"])
            #expect(upload.status == .noContent)
            #expect(try await s.alice.post("\(base)/files/read", json: ["path": "\(dir)/a.txt"]).body == ByteBuffer(string: "from admin"))
            #expect(try await s.bobSDK.post("/v1/capsules/\(capsule.id)/files/read", json: ["path": "\(dir)/a.txt"]).body
                    == ByteBuffer(string: "from admin"))
            #expect(try await s.alice.post("\(base)/files/mkdir", json: ["path": "\(dir)/sub"]).status == .ok)
            let listing = try await s.alice.post("\(base)/files/list", json: ["path": dir, "depth": 1]).decode(ListDirResponse.self)
            #expect(listing.entries.map(\.name).sorted() == ["a.txt", "sub"])
            #expect(try await s.alice.post("\(base)/files/remove", json: ["path": dir]).status == .noContent)
            #expect(try await s.alice.post("\(base)/files/read", json: ["path": "\(dir)/a.txt"]).status == .notFound)

            // Exec stream over WebSocket with the admin's session cookie.
            let port = try #require(s.cp.client.port)
            let frames = CapsuleAPITests.Frames()
            var headers = HTTPFields()
            headers[.cookie] = s.alice.cookieHeader
            var logger = Logger(label: "test.ws")
            logger.logLevel = .critical
            _ = try await WebSocketClient.connect(url: "ws://127.0.0.1:\(port)\(base)/exec/stream",
                                                  configuration: .init(additionalHeaders: headers), logger: logger) { inbound, outbound, _ in
                try await outbound.write(.text(#"{"type":"start","cmd":"/bin/sh","args":["-c","echo admin stream"]}"#))
                for try await message in inbound.messages(maxSize: 1 << 20) {
                    guard case .text(let text) = message else { continue }
                    frames.append(text)
                    if text.contains("\"exit\"") { break }
                }
            }
            #expect(frames.all.joined().contains("admin stream"))
            // Bob's session on the admin stream: 403 with the envelope, before any upgrade.
            let bobStream = try RawWebSocket.handshake(port: port, host: "localhost", path: "\(base)/pty", headers: ["Cookie": s.bob.cookieHeader])
            #expect(bobStream.status == 403 && bobStream.errorCode == "forbidden")
            #expect(bobStream.socket == nil)

            // Snapshot into the capsule's team (201, replaces a template of the same name).
            let snap = try await s.alice.post("\(base)/snapshot", json: ["name": "admin-snap"])
            #expect(snap.status == .created)
            #expect(try snap.decode(Template.self).platform == false)
            #expect(try await s.alice.post("\(base)/snapshot", json: ["name": "admin-snap"]).status == .created)
            #expect(try await s.bobSDK.get("/v1/snapshots").decode([Template].self).contains { $0.name == "admin-snap" })
            #expect(try await s.alice.get("/v1/admin/templates").decode([Template].self).contains { $0.name == "admin-snap" })
            #expect(try await s.alice.delete("/v1/admin/templates/admin-snap").status == .notFound) // not a platform template
            #expect(try await s.alice.delete("/v1/admin/templates/admin-snap?team_id=\(s.bobTeam)").status == .noContent)
            #expect(try await s.bobSDK.get("/v1/snapshots").decode([Template].self).allSatisfy { $0.name != "admin-snap" })

            // Destroy: 204, the ordinary path (bob's capsule ends up stopped), audited in bob's team as done via admin.
            #expect(try await s.alice.delete(base).status == .noContent)
            _ = try await CapsuleAPITests.wait(s.bobSDK, capsule.id, for: .stopped)
            let destroyed = try await Self.auditMetadata(s.cp, team: s.bobTeam, action: "destroy")
            #expect(destroyed.count == 1 && destroyed[0].contains("\"via\":\"admin\""))
            #expect(try await s.alice.post("\(base)/exec", json: ["cmd": "true"]).status == .conflict)
        }
    }

    @Test(arguments: TestBackend.available)
    func adminCreatesForATeamAndStreamsEveryTeamsEvents(_ backend: TestBackend) async throws {
        try await Self.withTeams(backend) { s in
            #expect(try await s.bob.post("/v1/admin/capsules", json: [:]).status == .forbidden)
            #expect(try await s.alice.post("/v1/admin/capsules", json: ["team_id": "team-00000000000000000000000009"]).status == .notFound)
            #expect(try await s.alice.post("/v1/admin/capsules", json: ["vcpus": 0]).status == .badRequest)
            // For bob's team: bob sees it as his own.
            let forBob = try await s.alice.post("/v1/admin/capsules", json: ["team_id": s.bobTeam, "timeout_sec": 0])
            #expect(forBob.status == .created)
            let bobs = try forBob.decode(Capsule.self)
            _ = try await CapsuleAPITests.wait(s.bobSDK, bobs.id, for: .running)
            #expect(try await Self.auditMetadata(s.cp, team: s.bobTeam, action: "create").contains { $0.contains("\"via\":\"admin\"") })
            // Without a team: the platform team's, invisible to bob.
            let platform = try await s.alice.post("/v1/admin/capsules", json: [:]).decode(Capsule.self)
            try await Self.wait(s.alice, platform.id, for: .running)
            #expect(try await s.bobSDK.get("/v1/capsules/\(platform.id)").status == .notFound)
            #expect(Set(try await s.alice.get("/v1/admin/capsules").decode([Capsule].self).map(\.id)) == [bobs.id, platform.id])
            #expect(try await s.alice.delete("/v1/admin/capsules/\(platform.id)").status == .noContent)
            try await Self.wait(s.alice, platform.id, for: .stopped)

            // The admin stream carries both teams' events; bob's stream only his.
            let all = try await CapsuleAPITests.readSSE(cp: s.cp, apiKey: nil, cookie: s.alice.cookieHeader, path: "/v1/admin/events/stream",
                                                        lastEventID: "0", until: "capsule.destroy")
            let created = all.filter { $0.event == "capsule.create" }.map(\.data)
            #expect(created.contains { $0.contains(bobs.id) } && created.contains { $0.contains(platform.id) })
            let bobStream = try await CapsuleAPITests.readSSE(cp: s.cp, apiKey: s.bobSDK.apiKey, lastEventID: "0", until: "capsule.create")
            #expect(bobStream.allSatisfy { !$0.data.contains(platform.id) })
            #expect(try await s.alice.delete("/v1/admin/capsules/\(bobs.id)").status == .noContent)
        }
    }

    @Test(arguments: TestBackend.available)
    func deletingATeamDestroysItsCapsules(_ backend: TestBackend) async throws {
        try await Self.withTeams(backend) { s in
            let running = try await s.bobSDK.post("/v1/capsules", json: [:]).decode(Capsule.self)
            let paused = try await s.bobSDK.post("/v1/capsules", json: [:]).decode(Capsule.self)
            _ = try await CapsuleAPITests.wait(s.bobSDK, running.id, for: .running)
            _ = try await CapsuleAPITests.wait(s.bobSDK, paused.id, for: .running)
            #expect(try await s.bobSDK.post("/v1/capsules/\(paused.id)/pause").status == .accepted)
            _ = try await CapsuleAPITests.wait(s.bobSDK, paused.id, for: .paused)
            let team = try #require(try await s.alice.get("/v1/admin/teams").decode([AdminTeam].self).first { $0.id == s.bobTeam })
            #expect(team.activeCapsules == 2 && team.ownerEmail == "bob@admin.test")

            #expect(try await s.alice.delete("/v1/admin/teams/\(s.bobTeam)").status == .noContent)
            for id in [running.id, paused.id] {
                try await Self.wait(s.alice, id, for: .stopped)
            }
            #expect(try await s.alice.get("/v1/admin/capsules").decode([Capsule].self).isEmpty)
            #expect(try await s.bobSDK.get("/v1/capsules").status == .unauthorized) // the team's keys went with it
            let kinds = try await s.cp.assembly.database.read { sql in
                try await sql.raw("SELECT kind FROM events WHERE team_id = \(bind: s.bobTeam) AND kind = 'capsule.destroy'")
                    .all(decodingColumn: "kind", as: String.self)
            }
            #expect(kinds.count == 2)
        }
    }
}
