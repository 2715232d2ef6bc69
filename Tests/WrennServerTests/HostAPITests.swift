import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import SQLKit
import Testing
import WrennPKI
import WrennServer
import WrennWire

/// Tag `hosts` over real HTTP on both databases: registry permissions, registration tokens (one-time, 1 h,
/// regenerate only while pending), host JWTs and heartbeats (wrong host → 403), refresh-token rotation with chain
/// revocation on reuse, tags, delete, and the sandbox-events callback's host authentication.
@Suite("hosts: registry, tokens, heartbeats")
struct HostAPITests {
    /// An unauthenticated caller (what a host agent is to the control plane).
    static func agentCall(_ cp: TestControlPlane, _ uri: String, json: [String: Any]? = nil, hostToken: String? = nil) async throws -> TestResponse {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let hostToken { headers[HTTPField.Name("X-Host-Token")!] = hostToken }
        return try await cp.client.execute(uri: uri, method: .post, headers: headers, body: json.map(Browser.encode) ?? ByteBuffer())
    }

    /// Registers like an agent: `csr` defaults to a fresh, valid CSR (nil sends none).
    static func register(_ cp: TestControlPlane, token: String, address: String = "127.0.0.1:1",
                         csr: String? = try? TLSIdentity.makeKeyAndCSR(commonName: "test-agent").csrPEM) async throws -> TestResponse {
        var body: [String: Any] = ["token": token, "address": address, "arch": "x86_64", "cpu_cores": 4,
                                            "memory_mb": 8192, "disk_gb": 100]
        if let csr { body["csr"] = csr }
        return try await agentCall(cp, "/v1/hosts/register", json: body)
    }

    @Test(arguments: TestBackend.available)
    func registrationTokensHeartbeatAndRefreshChain(_ backend: TestBackend) async throws {
        try await TestControlPlane.run(backend) { cp in
            let admin = try await cp.signedInUser(email: "admin@hosts.test")   // first user: platform admin
            let user = try await cp.signedInUser(email: "user@hosts.test")
            #expect(try await admin.get("/v1/hosts").status == .ok)
            #expect(try await cp.browser().get("/v1/hosts").status == .unauthorized)

            // Only admins create regular hosts.
            let refused = try await user.post("/v1/hosts", json: ["type": "regular"])
            #expect(refused.status == .forbidden)
            #expect(try await admin.post("/v1/hosts", json: ["type": "gpu"]).status == .badRequest)
            let created = try await admin.post("/v1/hosts", json: ["type": "regular", "provider": "bare-metal", "availability_zone": "eu-west"])
            #expect(created.status == .created)
            let first = try created.decode(CreateHostResponse.self)
            #expect(first.host.status == .pending && first.host.type == "regular" && first.host.provider == "bare-metal")
            #expect(first.registrationToken.count == 64)
            let id = first.host.id
            #expect(id.hasPrefix("host-"))

            // Others' hosts read as absent.
            #expect(try await user.get("/v1/hosts").decode([HostResource].self).isEmpty)
            #expect(try await user.get("/v1/hosts/\(id)").status == .notFound)
            #expect(try await user.post("/v1/hosts/\(id)/tags", json: ["tag": "x"]).status == .notFound)
            #expect(try await user.delete("/v1/hosts/\(id)").status == .notFound)
            #expect(try await admin.get("/v1/hosts").decode([HostResource].self).map(\.id) == [id])

            // Regenerating voids the first token; the new one registers once.
            let regenerated = try await admin.post("/v1/hosts/\(id)/token")
            #expect(regenerated.status == .created)
            let token = try regenerated.decode(CreateHostResponse.self).registrationToken
            #expect(try await Self.register(cp, token: first.registrationToken).status == .unauthorized)
            #expect(try await Self.register(cp, token: token, address: "no-port").status == .badRequest)
            // Mutual TLS: no CSR, or one that does not verify, is refused without spending the token.
            let noCSR = try await Self.register(cp, token: token, address: "127.0.0.1:9999", csr: nil)
            #expect(noCSR.status == .badRequest && noCSR.errorMessage?.hasPrefix("csr:") == true)
            #expect(try await Self.register(cp, token: token, address: "127.0.0.1:9999", csr: "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n").status == .badRequest)
            let registered = try await Self.register(cp, token: token, address: "127.0.0.1:9999")
            #expect(registered.status == .created)
            let credentials = try registered.decode(HostTokenResponse.self)
            // The agent's certificate comes from the control plane's CA, which is returned with it.
            #expect(credentials.certificate?.contains("BEGIN CERTIFICATE") == true)
            #expect(credentials.caCertificate == (try AgentTLS.load(dataDirectory: cp.assembly.services.config.dataDirectory).authority.certificatePEM))
            #expect(credentials.host.status == .online && credentials.host.address == "127.0.0.1:9999" && credentials.host.cpuCores == 4)
            #expect(credentials.token.split(separator: ".").count == 3)
            #expect(try await Self.register(cp, token: token).status == .unauthorized) // used
            #expect(try await admin.post("/v1/hosts/\(id)/token").status == .conflict)   // no longer pending

            // Stored hashed only.
            let stored = try await cp.assembly.database.read { sql in
                try await sql.raw("SELECT token_hash FROM host_refresh_tokens").all(decodingColumn: "token_hash", as: String.self)
            }
            #expect(stored.count == 1 && stored[0] != credentials.refreshToken)

            // Heartbeat: own JWT 204; none or forged 401; another host's JWT 403.
            #expect(try await Self.agentCall(cp, "/v1/hosts/\(id)/heartbeat", hostToken: credentials.token).status == .noContent)
            #expect(try await Self.agentCall(cp, "/v1/hosts/\(id)/heartbeat").status == .unauthorized)
            #expect(try await Self.agentCall(cp, "/v1/hosts/\(id)/heartbeat", hostToken: credentials.token + "x").status == .unauthorized)
            let other = try await admin.post("/v1/hosts", json: ["type": "regular"]).decode(CreateHostResponse.self)
            let otherCredentials = try await Self.register(cp, token: other.registrationToken, address: "127.0.0.1:2").decode(HostTokenResponse.self)
            let wrongHost = try await Self.agentCall(cp, "/v1/hosts/\(id)/heartbeat", hostToken: otherCredentials.token)
            #expect(wrongHost.status == .forbidden)

            // sandbox-events: host JWT; host_id in the body must match; the capsule must be that host's.
            let event: [String: Any] = ["kind": "auto_paused", "capsule_id": "cl-0000000000000000000000001", "status": "paused",
                                        "at": "2026-11-29T10:00:00.000Z"]
            #expect(try await Self.agentCall(cp, "/v1/hosts/sandbox-events", json: event).status == .unauthorized)
            var mismatched = event
            mismatched["host_id"] = id
            #expect(try await Self.agentCall(cp, "/v1/hosts/sandbox-events", json: mismatched, hostToken: otherCredentials.token).status == .forbidden)
            #expect(try await Self.agentCall(cp, "/v1/hosts/sandbox-events", json: event, hostToken: credentials.token).status == .notFound)

            // Refresh rotates; reusing the rotated token revokes the whole chain and every JWT of the host.
            let refreshed = try await Self.agentCall(cp, "/v1/hosts/auth/refresh", json: ["refresh_token": credentials.refreshToken])
            #expect(refreshed.status == .ok)
            let second = try refreshed.decode(HostTokenResponse.self)
            #expect(second.refreshToken != credentials.refreshToken)
            #expect(try await Self.agentCall(cp, "/v1/hosts/\(id)/heartbeat", hostToken: second.token).status == .noContent)
            let reuse = try await Self.agentCall(cp, "/v1/hosts/auth/refresh", json: ["refresh_token": credentials.refreshToken])
            #expect(reuse.status == .unauthorized)
            #expect(try await Self.agentCall(cp, "/v1/hosts/auth/refresh", json: ["refresh_token": second.refreshToken]).status == .unauthorized)
            #expect(try await Self.agentCall(cp, "/v1/hosts/\(id)/heartbeat", hostToken: second.token).status == .unauthorized)
            #expect(try await Self.agentCall(cp, "/v1/hosts/auth/refresh", json: ["refresh_token": "nope"]).status == .unauthorized)
            // The other host's chain is untouched.
            #expect(try await Self.agentCall(cp, "/v1/hosts/\(other.host.id)/heartbeat", hostToken: otherCredentials.token).status == .noContent)

            // Registration tokens expire after an hour.
            let late = try await admin.post("/v1/hosts", json: ["type": "regular"]).decode(CreateHostResponse.self)
            cp.clock.advance(by: 3601)
            #expect(try await Self.register(cp, token: late.registrationToken).status == .unauthorized)

            // Tags.
            #expect(try await admin.post("/v1/hosts/\(id)/tags", json: ["tag": "gpu"]).status == .noContent)
            #expect(try await admin.post("/v1/hosts/\(id)/tags", json: ["tag": "gpu"]).status == .noContent)
            #expect(try await admin.post("/v1/hosts/\(id)/tags", json: ["tag": "bad tag!"]).status == .badRequest)
            #expect(try await admin.get("/v1/hosts/\(id)/tags").decode([String].self) == ["gpu"])
            #expect(try await admin.delete("/v1/hosts/\(id)/tags/gpu").status == .noContent)
            #expect(try await admin.get("/v1/hosts/\(id)/tags").decode([String].self).isEmpty)

            // Delete: preview, then gone; the deleted host's heartbeat is 404 (the agent forgets its credentials).
            let preview = try await admin.get("/v1/hosts/\(other.host.id)/delete-preview").decode(HostDeletePreview.self)
            #expect(preview.sandboxIDs.isEmpty && preview.host.id == other.host.id)
            #expect(try await admin.delete("/v1/hosts/\(other.host.id)").status == .noContent)
            #expect(try await admin.get("/v1/hosts/\(other.host.id)").status == .notFound)
            #expect(try await Self.agentCall(cp, "/v1/hosts/\(other.host.id)/heartbeat", hostToken: otherCredentials.token).status == .notFound)
        }
    }

    @Test(arguments: TestBackend.available)
    func byocHostsBelongToTheirTeam(_ backend: TestBackend) async throws {
        try await TestControlPlane.run(backend) { cp in
            let admin = try await cp.signedInUser(email: "admin@byoc.test")
            let owner = try await cp.signedInUser(email: "owner@byoc.test")
            let stranger = try await cp.signedInUser(email: "stranger@byoc.test")
            let team = try await owner.get("/v1/teams").decode([TeamWithRole].self)[0].id
            let strangerTeam = try await stranger.get("/v1/teams").decode([TeamWithRole].self)[0].id

            #expect(try await owner.post("/v1/hosts", json: ["type": "byoc"]).status == .badRequest) // team_id required
            let notEnabled = try await owner.post("/v1/hosts", json: ["type": "byoc", "team_id": team])
            #expect(notEnabled.status == .forbidden)
            try await cp.assembly.database.read { sql in try await sql.raw("UPDATE teams SET is_byoc = 1 WHERE id = \(bind: team)").run() }
            #expect(try await stranger.post("/v1/hosts", json: ["type": "byoc", "team_id": team]).status == .notFound)
            let created = try await owner.post("/v1/hosts", json: ["type": "byoc", "team_id": team])
            #expect(created.status == .created)
            let host = try created.decode(CreateHostResponse.self).host
            #expect(host.teamID == team && host.type == "byoc")

            #expect(try await owner.get("/v1/hosts").decode([HostResource].self).map(\.id) == [host.id])
            #expect(try await owner.get("/v1/hosts/\(host.id)").status == .ok)
            #expect(try await admin.get("/v1/hosts/\(host.id)").status == .ok)
            #expect(try await stranger.get("/v1/hosts").decode([HostResource].self).isEmpty)
            #expect(try await stranger.get("/v1/hosts/\(host.id)").status == .notFound)
            #expect(try await stranger.get("/v1/hosts/\(host.id)/delete-preview").status == .notFound)
            #expect(try await owner.post("/v1/hosts", json: ["type": "byoc", "team_id": strangerTeam]).status == .notFound)
            #expect(try await owner.post("/v1/hosts/\(host.id)/tags", json: ["tag": "mine"]).status == .noContent)
            #expect(try await owner.post("/v1/hosts/\(host.id)/token").status == .created)
            #expect(try await owner.delete("/v1/hosts/\(host.id)").status == .noContent)
        }
    }

    /// The spec's sandbox-events body (`{event, sandbox_id, host_id, timestamp}`), here from the configured agent
    /// (`host-local`, shared bearer token): known names change the capsule, unknown ones are accepted, another host's
    /// id is 403, missing fields 400.
    @Test func specShapedSandboxEvents() async throws {
        try await CapsuleAPITests.withPlatform { cp, agent, sdk in
            let id = try await sdk.post("/v1/capsules", json: [:]).decode(Capsule.self).id
            _ = try await CapsuleAPITests.wait(sdk, id, for: .running)
            func send(_ json: [String: Any], token: String = agent.token) async throws -> TestResponse {
                try await cp.client.execute(uri: "/v1/hosts/sandbox-events", method: .post,
                                            headers: [.contentType: "application/json", .authorization: "Bearer \(token)"], body: Browser.encode(json))
            }
            let paused: [String: Any] = ["event": "sandbox.auto_paused", "sandbox_id": id, "host_id": "host-local", "timestamp": 1_790_000_000]
            #expect(try await send(paused, token: "wrong").status == .unauthorized)
            var foreign = paused
            foreign["host_id"] = "host-other"
            #expect(try await send(foreign).status == .forbidden)
            #expect(try await send(["event": "sandbox.stopped", "host_id": "host-local"]).status == .badRequest)
            var future = paused
            future["event"] = "sandbox.hibernated"
            #expect(try await send(future).status == .noContent)
            #expect(try await sdk.get("/v1/capsules/\(id)").decode(Capsule.self).status == .running)
            #expect(try await send(paused).status == .noContent)
            #expect(try await sdk.get("/v1/capsules/\(id)").decode(Capsule.self).status == .paused)
            var unknown = paused
            unknown["sandbox_id"] = "cl-0000000000000000000000001"
            #expect(try await send(unknown).status == .notFound)
        }
    }
}
