import AsyncHTTPClient
import Foundation
import NIOCore
import SQLKit
import Testing
import WrennAgent
import WrennServer
import WrennTestSupport
import WrennWire

/// Several real host agents (each its own `AgentServer` on its own loopback port, registered with
/// `--register`-style one-time tokens and heartbeating with its host JWT) under one control plane: scheduling spreads
/// capsules, a stopped agent's host goes `unreachable` and its capsules `missing`, new capsules avoid it, restarting it
/// restores the capsules' real states, the reconciler stops capsules an agent lost and reports ones it does not know,
/// BYOC capsules stay on their team's host, no room is a 503 without a capsule row, and force delete cleans up.
@Suite("many hosts: scheduling, failure, reconciliation", .serialized)
struct MultiHostTests {
    struct Platform {
        let cp: TestControlPlane
        let admin: Browser
        let sdk: Browser
        let url: String
    }

    static let facts = HostSession.Facts(arch: "x86_64", cpuCores: 4, memoryMB: 4096, diskGB: 100)

    /// A control plane whose monitor only runs when the test calls `sweep()`, an admin, and an API key of the admin's team.
    static func withPlatform(_ backend: TestBackend, _ body: @Sendable @escaping (Platform) async throws -> Void) async throws {
        try await TestControlPlane.run(backend, configure: { $0.hostMonitor = .init(interval: .seconds(3600)) }) { cp in
            let admin = try await cp.signedInUser(email: "ops@hosts.test")
            let key = try #require(try await admin.post("/v1/api-keys", json: ["name": "sdk"]).decode(APIKeyResponse.self).key)
            let sdk = cp.browser()
            sdk.apiKey = key
            let port = try #require(cp.client.port)
            try await body(Platform(cp: cp, admin: admin, sdk: sdk, url: "http://127.0.0.1:\(port)"))
        }
    }

    /// Creates a host as `creator` and starts an agent that registers it.
    static func agent(_ p: Platform, creator: Browser? = nil, json: [String: Any] = ["type": "regular"],
                      facts: HostSession.Facts = facts) async throws -> RegisteredAgent {
        let created = try await (creator ?? p.admin).post("/v1/hosts", json: json)
        #expect(created.status == .created)
        let token = try created.decode(CreateHostResponse.self).registrationToken
        return try await RegisteredAgent.start(controlPlaneURL: p.url, registrationToken: token, facts: facts)
    }

    static func hostOf(_ p: Platform, _ capsule: String) async throws -> String? {
        try await p.cp.assembly.database.read { sql in
            try await sql.raw("SELECT host_id FROM capsules WHERE id = \(bind: capsule)").first(decodingColumn: "host_id", as: String?.self) ?? nil
        }
    }

    static func host(_ p: Platform, _ id: String) async throws -> HostResource {
        try await p.admin.get("/v1/hosts/\(id)").decode(HostResource.self)
    }

    static func create(_ sdk: Browser, _ json: [String: Any] = [:]) async throws -> String {
        let response = try await sdk.post("/v1/capsules", json: json)
        #expect(response.status == .accepted)
        let id = try response.decode(Capsule.self).id
        _ = try await CapsuleAPITests.wait(sdk, id, for: .running)
        return id
    }

    /// Polls until `check` holds.
    static func eventually(_ what: String, timeout: Duration = .seconds(15), _ check: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while try await !check() {
            if ContinuousClock.now > deadline { throw TestBackendError("timed out waiting for \(what)") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    @Test(arguments: TestBackend.available)
    func spreadFailureRestartAndForceDelete(_ backend: TestBackend) async throws {
        try await Self.withPlatform(backend) { p in
            let a = try await Self.agent(p)
            let b = try await Self.agent(p)
            do {
                #expect(a.hostID != b.hostID)
                let credentials = try #require(HostCredentials.load(path: HostCredentials.path(dataDirectory: a.dataDirectory)))
                #expect(credentials.hostID == a.hostID)
                let mode = try FileManager.default.attributesOfItem(atPath: HostCredentials.path(dataDirectory: a.dataDirectory))[.posixPermissions] as? Int
                #expect(mode == 0o600)
                #expect(try await Self.host(p, a.hostID).status == .online)

                // Most headroom first: four equal capsules on two equal hosts → two each.
                var placed: [String: [String]] = [:]
                for _ in 0..<4 {
                    let id = try await Self.create(p.sdk, ["memory_mb": 512])
                    placed[try #require(try await Self.hostOf(p, id)), default: []].append(id)
                }
                #expect(placed[a.hostID]?.count == 2 && placed[b.hostID]?.count == 2)
                let onA = try #require(placed[a.hostID]), onB = try #require(placed[b.hostID])
                // Exec works through the chosen agent.
                let echo = try await CapsuleAPITests.exec(p.sdk, onA[0], "echo via-a")
                #expect(try echo.decode(ExecResponse.self).stdout == "via-a\n")

                // Agent A stops; after the heartbeat timeout its host is unreachable and its capsules missing.
                await a.stop()
                p.cp.clock.advance(by: 91)
                let now = p.cp.clock.now()
                try await Self.eventually("b's heartbeat after the clock moved") {
                    try await Self.host(p, b.hostID).lastHeartbeatAt.map { $0 >= now.addingTimeInterval(-0.01) } ?? false
                }
                let down = await p.cp.assembly.services.hostMonitor.sweep()
                #expect(down == [a.hostID])
                #expect(try await Self.host(p, a.hostID).status == .unreachable)
                #expect(try await Self.host(p, b.hostID).status == .online)
                for id in onA { #expect(try await p.sdk.get("/v1/capsules/\(id)").decode(Capsule.self).status == .missing) }
                for id in onB { #expect(try await p.sdk.get("/v1/capsules/\(id)").decode(Capsule.self).status == .running) }
                let kinds = try await p.cp.assembly.database.read { sql in
                    try await sql.raw("SELECT kind FROM events").all(decodingColumn: "kind", as: String.self)
                }
                #expect(kinds.contains("host.down"))

                // New capsules go to the host that is still up.
                let fifth = try await Self.create(p.sdk)
                #expect(try await Self.hostOf(p, fifth) == b.hostID)

                // While A was down one of its capsules was paused on the host; restarting A brings its capsules back
                // as they really are.
                _ = try await a.runtime.pause(onA[1])
                try await a.restart()
                try await Self.eventually("host a back online") { try await Self.host(p, a.hostID).status == .online }
                _ = try await CapsuleAPITests.wait(p.sdk, onA[0], for: .running)
                _ = try await CapsuleAPITests.wait(p.sdk, onA[1], for: .paused)
                let upKinds = try await p.cp.assembly.database.read { sql in
                    try await sql.raw("SELECT kind FROM events").all(decodingColumn: "kind", as: String.self)
                }
                #expect(upKinds.contains("host.up"))

                // Reconciler: a capsule B lost becomes stopped; one B has that the database does not know is reported,
                // not destroyed.
                try await b.runtime.destroy(onB[0])
                _ = try await b.runtime.create(CapsuleRequest(id: "cl-stray", template: "minimal", vcpus: 1, memoryMiB: 128, diskMiB: 512))
                let report = try await p.cp.assembly.services.hostService.reconciler.reconcile(hostID: b.hostID)
                #expect(report.stopped == [onB[0]])
                #expect(report.unknown == ["cl-stray"])
                #expect(try await p.sdk.get("/v1/capsules/\(onB[0])").decode(Capsule.self).status == .stopped)
                #expect(await b.runtime.list().contains { $0.id == "cl-stray" })

                // Delete: refused while capsules are active (with their ids); force destroys them first.
                let refused = try await p.admin.delete("/v1/hosts/\(b.hostID)")
                #expect(refused.status == .conflict)
                let envelope = try refused.decode(HostHasCapsulesError.self)
                #expect(envelope.error.code == "host_has_sandboxes")
                #expect(Set(envelope.error.sandboxIDs) == Set([onB[1], fifth]))
                let preview = try await p.admin.get("/v1/hosts/\(b.hostID)/delete-preview").decode(HostDeletePreview.self)
                #expect(Set(preview.sandboxIDs) == Set([onB[1], fifth]))
                #expect(try await p.admin.delete("/v1/hosts/\(b.hostID)?force=true").status == .noContent)
                #expect(try await p.admin.get("/v1/hosts/\(b.hostID)").status == .notFound)
                for id in [onB[1], fifth] {
                    #expect(try await p.sdk.get("/v1/capsules/\(id)").decode(Capsule.self).status == .stopped)
                }
                #expect(await b.runtime.list().map(\.id) == ["cl-stray"])
                // The deleted host's agent learns it on its next heartbeat and forgets its credentials.
                try await Self.eventually("b forgets its credentials") {
                    !FileManager.default.fileExists(atPath: HostCredentials.path(dataDirectory: b.dataDirectory))
                }
            } catch {
                await a.destroy()
                await b.destroy()
                throw error
            }
            await a.destroy()
            await b.destroy()
        }
    }

    /// Concurrent creates cannot overbook a host: the insert re-checks the chosen host under its row lock, so of 10
    /// simultaneous 1-vCPU creates (each on its own connection) on a host with room for 4 (2 cores × 2), exactly 4
    /// are accepted and the others are 503.
    @Test(arguments: TestBackend.available)
    func concurrentCreatesDoNotOverbook(_ backend: TestBackend) async throws {
        try await Self.withPlatform(backend) { p in
            let host = try await Self.agent(p, facts: .init(arch: "x86_64", cpuCores: 2, memoryMB: 65536, diskGB: 1000))
            let port = try #require(p.cp.client.port)
            let key = try #require(p.sdk.apiKey)
            var configuration = HTTPClient.Configuration()
            configuration.connectionPool = .init(idleTimeout: .seconds(5), concurrentHTTP1ConnectionsPerHostSoftLimit: 16)
            let caller = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            do {
                let statuses = try await withThrowingTaskGroup(of: UInt.self) { group in
                    for _ in 0..<10 {
                        group.addTask {
                            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/capsules")
                            request.method = .POST
                            request.headers.add(name: "X-API-Key", value: key)
                            request.headers.add(name: "Content-Type", value: "application/json")
                            request.body = .bytes(ByteBuffer(string: #"{"vcpus":1}"#))
                            let response = try await caller.execute(request, timeout: .seconds(30))
                            _ = try await response.body.collect(upTo: 1 << 20)
                            return response.status.code
                        }
                    }
                    return try await group.reduce(into: [UInt]()) { $0.append($1) }
                }
                #expect(statuses.filter { $0 == 202 }.count == 4, "\(statuses)")
                #expect(statuses.filter { $0 == 503 }.count == 6, "\(statuses)")
                let placed = try await p.cp.assembly.database.read { sql in
                    try await sql.raw("SELECT COUNT(*) AS n FROM capsules WHERE host_id = \(bind: host.hostID)").first(decodingColumn: "n", as: Int64.self) ?? 0
                }
                #expect(placed == 4)
                // Let the accepted creates finish before the agent goes (a create in flight to a stopped agent waits
                // out the control plane's shutdown grace).
                try await Self.eventually("the 4 capsules running") {
                    try await p.sdk.get("/v1/capsules").decode([Capsule].self).filter { $0.status == .running }.count == 4
                }
            } catch {
                try? await caller.shutdown()
                await host.destroy()
                throw error
            }
            try await caller.shutdown()
            await host.destroy()
        }
    }

    @Test(arguments: TestBackend.available)
    func byocPoolsAndNoRoom(_ backend: TestBackend) async throws {
        try await Self.withPlatform(backend) { p in
            // A BYOC team with its own host, and a small platform host.
            let owner = try await p.cp.signedInUser(email: "byoc-owner@hosts.test")
            let team = try await owner.get("/v1/teams").decode([TeamWithRole].self)[0].id
            try await p.cp.assembly.database.read { sql in try await sql.raw("UPDATE teams SET is_byoc = 1 WHERE id = \(bind: team)").run() }
            let ownerKey = try #require(try await owner.post("/v1/api-keys", json: ["name": "byoc"]).decode(APIKeyResponse.self).key)
            let byocSDK = p.cp.browser()
            byocSDK.apiKey = ownerKey

            // No host at all yet: 503 and no capsule row.
            let none = try await p.sdk.post("/v1/capsules", json: [:])
            #expect(none.status == .serviceUnavailable)
            #expect(none.errorCode == "no_hosts_available")

            let platform = try await Self.agent(p, facts: .init(arch: "x86_64", cpuCores: 1, memoryMB: 1024, diskGB: 20))
            let byoc = try await Self.agent(p, creator: owner, json: ["type": "byoc", "team_id": team])
            do {
                let platformCapsule = try await Self.create(p.sdk, ["memory_mb": 512])
                #expect(try await Self.hostOf(p, platformCapsule) == platform.hostID)
                let teamCapsule = try await Self.create(byocSDK)
                #expect(try await Self.hostOf(p, teamCapsule) == byoc.hostID)

                // The platform host has 1024 MB; 512 are used: a 768 MB capsule does not fit anywhere the platform team
                // may go (never on the BYOC host, which has room) → 503 with a reason, and no row.
                let before = try await p.cp.assembly.database.read { sql in
                    try await sql.raw("SELECT COUNT(*) AS n FROM capsules").first(decodingColumn: "n", as: Int64.self) ?? 0
                }
                let full = try await p.sdk.post("/v1/capsules", json: ["memory_mb": 768])
                #expect(full.status == .serviceUnavailable)
                #expect(full.errorCode == "no_hosts_available")
                #expect(full.errorMessage?.contains("768 MB memory") == true)
                let after = try await p.cp.assembly.database.read { sql in
                    try await sql.raw("SELECT COUNT(*) AS n FROM capsules").first(decodingColumn: "n", as: Int64.self) ?? 0
                }
                #expect(before == after)

                // Paused capsules hold only half their memory: pausing the 512 MB capsule makes room for 768 MB.
                #expect(try await p.sdk.post("/v1/capsules/\(platformCapsule)/pause").status == .accepted)
                _ = try await CapsuleAPITests.wait(p.sdk, platformCapsule, for: .paused)
                let fits = try await Self.create(p.sdk, ["memory_mb": 768])
                #expect(try await Self.hostOf(p, fits) == platform.hostID)

                // A BYOC team never lands on platform hosts: with its host down it gets 503.
                await byoc.stop()
                p.cp.clock.advance(by: 91)
                try await Self.eventually("platform heartbeat after the clock moved") {
                    let beat = try await Self.host(p, platform.hostID).lastHeartbeatAt
                    return beat.map { $0 >= p.cp.clock.now().addingTimeInterval(-0.01) } ?? false
                }
                _ = await p.cp.assembly.services.hostMonitor.sweep()
                let stranded = try await byocSDK.post("/v1/capsules", json: ["memory_mb": 128])
                #expect(stranded.status == .serviceUnavailable)
                #expect(try await byocSDK.get("/v1/capsules/\(teamCapsule)").decode(Capsule.self).status == .missing)
            } catch {
                await platform.destroy()
                await byoc.destroy()
                throw error
            }
            await platform.destroy()
            await byoc.destroy()
        }
    }

    @Test(arguments: TestBackend.available)
    func snapshotCapsulesGoToTheTemplatesHost(_ backend: TestBackend) async throws {
        try await Self.withPlatform(backend) { p in
            let small = try await Self.agent(p, facts: .init(arch: "x86_64", cpuCores: 2, memoryMB: 2048, diskGB: 50))
            let big = try await Self.agent(p, facts: .init(arch: "x86_64", cpuCores: 16, memoryMB: 65536, diskGB: 1000))
            do {
                // The big host has more headroom; pin the source capsule to the small one by filling the big one's
                // candidacy only through the template rule: create on small by stopping big first.
                await big.stop()
                p.cp.clock.advance(by: 91)
                try await Self.eventually("small heartbeat after the clock moved") {
                    try await Self.host(p, small.hostID).lastHeartbeatAt.map { $0 >= p.cp.clock.now().addingTimeInterval(-0.01) } ?? false
                }
                _ = await p.cp.assembly.services.hostMonitor.sweep()
                let source = try await Self.create(p.sdk, ["memory_mb": 256])
                #expect(try await Self.hostOf(p, source) == small.hostID)
                let made = try await p.sdk.post("/v1/snapshots", json: ["sandbox_id": source, "name": "pinned"])
                #expect(made.status == .created)
                try await big.restart()
                try await Self.eventually("big back online") { try await Self.host(p, big.hostID).status == .online }

                // Plain capsules prefer the big host; capsules from the snapshot go where the snapshot is.
                let plain = try await Self.create(p.sdk)
                #expect(try await Self.hostOf(p, plain) == big.hostID)
                for _ in 0..<2 {
                    let fromSnapshot = try await Self.create(p.sdk, ["template": "pinned"])
                    #expect(try await Self.hostOf(p, fromSnapshot) == small.hostID)
                }

                // The template's host down → 503 naming it, though another host has room.
                await small.stop()
                p.cp.clock.advance(by: 91)
                try await Self.eventually("big heartbeat after the clock moved") {
                    try await Self.host(p, big.hostID).lastHeartbeatAt.map { $0 >= p.cp.clock.now().addingTimeInterval(-0.01) } ?? false
                }
                _ = await p.cp.assembly.services.hostMonitor.sweep()
                let refused = try await p.sdk.post("/v1/capsules", json: ["template": "pinned"])
                #expect(refused.status == .serviceUnavailable)
                #expect(refused.errorMessage?.contains(small.hostID) == true)
            } catch {
                await small.destroy()
                await big.destroy()
                throw error
            }
            await small.destroy()
            await big.destroy()
        }
    }

    @Test(arguments: TestBackend.available)
    func agentRefreshesAnExpiredJWTAndReportsEventsWithIt(_ backend: TestBackend) async throws {
        try await Self.withPlatform(backend) { p in
            let agent = try await Self.agent(p)
            let fresh = try await Self.agent(p) // made now: the admin's session does not survive eight days
            do {
                let first = try #require(agent.session?.credentials)
                // Eight days later (control plane clock) the JWT has expired: the next heartbeat is refused, the agent
                // rotates its refresh token, saves the new pair and heartbeats again.
                p.cp.clock.advance(by: 8 * 24 * 3600)
                try await Self.eventually("the agent refreshed its credentials") {
                    let saved = HostCredentials.load(path: HostCredentials.path(dataDirectory: agent.dataDirectory))
                    return saved.map { $0.token != first.token && $0.refreshToken != first.refreshToken } ?? false
                }
                try await Self.eventually("a heartbeat with the new JWT") {
                    let beat = try await p.cp.assembly.database.read { sql in // the admin's session expired meanwhile
                        try await sql.raw("SELECT last_heartbeat_at FROM hosts WHERE id = \(bind: agent.hostID)")
                            .first(decodingColumn: "last_heartbeat_at", as: Int64.self)
                    }
                    return (beat ?? 0) >= Int64(p.cp.clock.now().timeIntervalSince1970 * 1000) - 10
                }

                // Autonomous events travel with the host JWT: a capsule whose VMM died turns `error` on the control plane
                // (on either host: the refreshed one or the other).
                let id = try await Self.create(p.sdk)
                let hostID = try #require(try await Self.hostOf(p, id))
                let owner = hostID == fresh.hostID ? fresh : agent
                let exited = Process()
                exited.executableURL = URL(fileURLWithPath: "/bin/true")
                try exited.run()
                exited.waitUntilExit()
                await owner.runtime.setPID(id, exited.processIdentifier)
                _ = try await CapsuleAPITests.wait(p.sdk, id, for: .error)
                // The old refresh token is spent: presenting it again revokes the chain (so the agent's own copy must
                // never be reused — it saved the new one first).
                #expect(try await HostAPITests.agentCall(p.cp, "/v1/hosts/auth/refresh", json: ["refresh_token": first.refreshToken]).status == .unauthorized)
            } catch {
                await agent.destroy()
                await fresh.destroy()
                throw error
            }
            await agent.destroy()
            await fresh.destroy()
        }
    }
}
