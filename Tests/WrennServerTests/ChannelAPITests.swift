import Foundation
import HummingbirdTesting
import Logging
import ServiceLifecycle
import SQLKit
import Testing
@testable import WrennServer
import WrennWire

/// The seven `channels` operations over real HTTP on both databases: validation, team scoping, secrets, encryption
/// at rest, and the start-up key check.
@Suite("Notification channels API")
struct ChannelAPITests {
    static let key = Data((0..<32).map { UInt8($0) })

    static func withKey(_ config: inout ServerConfig) {
        config.channels.encryptionKey = key
        config.channels.pollInterval = .milliseconds(50)
    }

    @Test(arguments: TestBackend.available)
    func lifecycleAndSecrets(_ backend: TestBackend) async throws {
        try await TestControlPlane.run(backend, configure: Self.withKey) { cp in
            let b = try await cp.signedInUser(email: "chan@c.c")
            let created = try await b.post("/v1/channels", json: [
                "name": "  Ops Alerts ", "provider": "webhook", "config": ["url": "https://hooks.example.test/wrenn"],
                "events": ["capsule.destroy", "capsule.create", "capsule.create"],
            ])
            #expect(created.status == .created)
            let channel = try created.decode(ChannelResponse.self)
            #expect(channel.id.hasPrefix("ch-"))
            #expect(channel.name == "ops-alerts")
            #expect(channel.provider == "webhook")
            #expect(channel.events == ["capsule.create", "capsule.destroy"])
            let secret = try #require(channel.secret)
            #expect(secret.count == 64)

            // The secret is shown once: never in get or list, nor anywhere in the stored row.
            let got = try await b.get("/v1/channels/\(channel.id)")
            #expect(got.status == .ok)
            #expect(try got.decode(ChannelResponse.self).secret == nil)
            #expect(got.json["config"] == nil)
            let listed = try await b.get("/v1/channels").decode([ChannelResponse].self)
            #expect(listed.map(\.id) == [channel.id])
            #expect(listed[0].secret == nil)
            let row = try await cp.assembly.database.read { sql in
                try await sql.raw("SELECT config FROM channels WHERE id = \(bind: channel.id)").first(decodingColumn: "config", as: String.self)
            }
            let stored = try #require(row)
            #expect(!stored.contains(secret))
            #expect(!stored.contains("hooks.example.test"))
            // …and it decrypts with the key to what was given.
            let opened = try ChannelCipher(key: Self.key).open(stored, channel: channel.id)
            #expect(opened == ["url": "https://hooks.example.test/wrenn", "secret": secret])

            // Update renames and resubscribes.
            let updated = try await b.patch("/v1/channels/\(channel.id)", json: ["name": "paging", "events": ["host.down"]])
            #expect(updated.status == .ok)
            let u = try updated.decode(ChannelResponse.self)
            #expect(u.name == "paging" && u.events == ["host.down"] && u.secret == nil)

            // Rotating without a secret generates a new one, shown in that response only; with one, it is not echoed.
            let rotated = try await b.putJSON("/v1/channels/\(channel.id)/config", json: ["config": ["url": "https://other.example.test/h"]])
            #expect(rotated.status == .ok)
            let newSecret = try #require(try rotated.decode(ChannelResponse.self).secret)
            #expect(newSecret != secret)
            let chosen = try await b.putJSON("/v1/channels/\(channel.id)/config",
                                         json: ["config": ["url": "https://other.example.test/h", "secret": "my-own-secret-0123456789"]])
            #expect(chosen.status == .ok)
            #expect(try chosen.decode(ChannelResponse.self).secret == nil)
            let rotatedRow = try await cp.assembly.database.read { sql in
                try await sql.raw("SELECT config FROM channels WHERE id = \(bind: channel.id)").first(decodingColumn: "config", as: String.self)
            }
            #expect(try ChannelCipher(key: Self.key).open(try #require(rotatedRow), channel: channel.id)["secret"] == "my-own-secret-0123456789")

            // Names are unique per team.
            let dup = try await b.post("/v1/channels", json: [
                "name": "Paging", "provider": "slack", "config": ["webhook_url": "https://hooks.slack.test/x"], "events": ["host.up"],
            ])
            #expect(dup.status == .conflict)
            // A non-webhook channel never has a secret.
            let slack = try await b.post("/v1/channels", json: [
                "name": "slack", "provider": "slack", "config": ["webhook_url": "https://hooks.slack.test/x"], "events": ["host.up"],
            ])
            #expect(slack.status == .created)
            #expect(try slack.decode(ChannelResponse.self).secret == nil)

            // Audited.
            let audit = try await b.get("/v1/audit-logs?limit=50").decode(AuditLogPage.self)
            let actions = audit.entries.filter { $0.resourceType == "channel" }.map(\.action)
            #expect(actions.filter { $0 == "create" }.count == 2)
            #expect(actions.contains("update") && actions.contains("rotate_config"))

            #expect(try await b.delete("/v1/channels/\(channel.id)").status == .noContent)
            #expect(try await b.get("/v1/channels/\(channel.id)").status == .notFound)
            #expect(try await b.delete("/v1/channels/\(channel.id)").status == .notFound)
            let afterDelete = try await b.get("/v1/audit-logs?limit=50").decode(AuditLogPage.self)
            #expect(afterDelete.entries.contains { $0.resourceType == "channel" && $0.action == "delete" })
        }
    }

    @Test(arguments: TestBackend.available)
    func validationNamesTheField(_ backend: TestBackend) async throws {
        try await TestControlPlane.run(backend, configure: Self.withKey) { cp in
            let b = try await cp.signedInUser(email: "valid@c.c")
            func create(_ body: [String: Any]) async throws -> (Int, String) {
                let r = try await b.post("/v1/channels", json: body)
                return (Int(r.status.code), r.errorMessage ?? "")
            }
            let good: [String: Any] = ["name": "a", "provider": "discord", "config": ["webhook_url": "https://discord.test/api/webhooks/1/x"],
                                       "events": ["capsule.create"]]
            func with(_ key: String, _ value: Any) -> [String: Any] { var g = good; g[key] = value; return g }

            var (status, message) = try await create(with("provider", "pagerduty"))
            #expect(status == 400 && message.hasPrefix("provider:"))
            (status, message) = try await create(with("config", [String: String]()))
            #expect(status == 400 && message.hasPrefix("config.webhook_url:"))
            (status, message) = try await create(with("config", ["webhook_url": "ftp://x.test/"]))
            #expect(status == 400 && message.hasPrefix("config.webhook_url:"))
            (status, message) = try await create(with("config", ["webhook_url": "https://d.test/x", "token": "t"]))
            #expect(status == 400 && message.hasPrefix("config.token:"))
            (status, message) = try await create(with("events", ["capsule.create", "capsule.explode"]))
            #expect(status == 400 && message.hasPrefix("events[1]:"))
            (status, message) = try await create(with("events", [String]()))
            #expect(status == 400 && message.hasPrefix("events:"))
            (status, message) = try await create(with("name", "!!"))
            #expect(status == 400 && message.hasPrefix("name:"))
            (status, message) = try await create(["name": "x", "provider": "telegram", "config": ["bot_token": "123:abc"], "events": ["host.up"]])
            #expect(status == 400 && message.hasPrefix("config.chat_id:"))
            (status, message) = try await create(["name": "x", "provider": "matrix",
                                                  "config": ["homeserver_url": "https://m.test", "access_token": "t"], "events": ["host.up"]])
            #expect(status == 400 && message.hasPrefix("config.room_id:"))
            (status, message) = try await create(["name": "x", "provider": "webhook", "config": ["url": "https://w.test", "secret": "short"],
                                                  "events": ["host.up"]])
            #expect(status == 400 && message.hasPrefix("config.secret:"))
            (status, message) = try await create(["name": "x", "provider": "slack", "events": ["host.up"]])
            #expect(status == 400 && message.contains("config"))
            // Every provider accepts its contract fields.
            let configs: [(String, [String: String])] = [
                ("discord", ["webhook_url": "https://d.test/x"]), ("slack", ["webhook_url": "https://s.test/x"]),
                ("teams", ["webhook_url": "https://t.test/x"]), ("googlechat", ["webhook_url": "https://g.test/x"]),
                ("telegram", ["bot_token": "1:a", "chat_id": "-100"]),
                ("matrix", ["homeserver_url": "https://m.test", "access_token": "syt", "room_id": "!r:m.test"]),
                ("webhook", ["url": "https://w.test/x"]),
            ]
            for (provider, config) in configs {
                let r = try await b.post("/v1/channels", json: ["name": provider, "provider": provider, "config": config, "events": ["host.up"]])
                #expect(r.status == .created, "\(provider): \(r.errorMessage ?? "")")
            }
            // PATCH and PUT validate too, and rotation checks the channel's own provider's fields.
            let id = try await b.get("/v1/channels").decode([ChannelResponse].self).first { $0.provider == "telegram" }?.id ?? ""
            let badPatch = try await b.patch("/v1/channels/\(id)", json: ["name": "ok", "events": ["nope"]])
            #expect(badPatch.status == .badRequest && badPatch.errorMessage?.hasPrefix("events[0]:") == true)
            let badRotate = try await b.putJSON("/v1/channels/\(id)/config", json: ["config": ["webhook_url": "https://d.test/x"]])
            #expect(badRotate.status == .badRequest && badRotate.errorMessage?.hasPrefix("config.webhook_url:") == true)
        }
    }

    @Test(arguments: TestBackend.available)
    func anotherTeamsChannelIsNotFound(_ backend: TestBackend) async throws {
        try await TestControlPlane.run(backend, configure: Self.withKey) { cp in
            let owner = try await cp.signedInUser(email: "own@c.c")
            let channel = try await owner.post("/v1/channels", json: [
                "name": "mine", "provider": "googlechat", "config": ["webhook_url": "https://chat.googleapis.test/v1/spaces/x"],
                "events": ["capsule.pause"],
            ]).decode(ChannelResponse.self)
            let other = try await cp.signedInUser(email: "other@c.c")
            #expect(try await other.get("/v1/channels/\(channel.id)").status == .notFound)
            #expect(try await other.patch("/v1/channels/\(channel.id)", json: ["name": "x", "events": ["host.up"]]).status == .notFound)
            #expect(try await other.putJSON("/v1/channels/\(channel.id)/config", json: ["config": ["webhook_url": "https://x.test"]]).status == .notFound)
            #expect(try await other.delete("/v1/channels/\(channel.id)").status == .notFound)
            #expect(try await other.get("/v1/channels").decode([ChannelResponse].self).isEmpty)
            #expect(try await owner.get("/v1/channels/\(channel.id)").status == .ok)

            // A team member (not owner) manages the team's channels too.
            let teamID = channel.teamId
            #expect(try await owner.post("/v1/teams/\(teamID)/members", json: ["email": "other@c.c"]).status == .created)
            #expect(try await other.post("/v1/auth/switch-team", json: ["team_id": teamID]).status == .ok)
            #expect(try await other.get("/v1/channels/\(channel.id)").status == .ok)

            // No session → 401; API keys are not accepted (session-only operations).
            #expect(try await cp.browser().get("/v1/channels").status == .unauthorized)
            let key = try #require(try await owner.post("/v1/api-keys", json: ["name": "k"]).decode(APIKeyResponse.self).key)
            let program = cp.browser()
            program.apiKey = key
            #expect(try await program.get("/v1/channels").status == .unauthorized)
        }
    }

    @Test(arguments: TestBackend.available)
    func encryptionKeyIsRequired(_ backend: TestBackend) async throws {
        // Without a key, channels cannot be created (503 saying what to set).
        try await TestControlPlane.run(backend) { cp in
            let b = try await cp.signedInUser(email: "nokey@c.c")
            let r = try await b.post("/v1/channels", json: [
                "name": "x", "provider": "slack", "config": ["webhook_url": "https://s.test/x"], "events": ["host.up"],
            ])
            #expect(r.status == .serviceUnavailable)
            #expect(r.errorMessage?.contains("WRENN_ENCRYPTION_KEY") == true)
            // An installation without channels starts without a key…
            try await ChannelService.checkEncryptionKey(database: cp.assembly.database, settings: ChannelSettings())
        }
        // …but one with channels refuses to.
        try await TestControlPlane.run(backend, configure: Self.withKey) { cp in
            let b = try await cp.signedInUser(email: "key@c.c")
            #expect(try await b.post("/v1/channels", json: [
                "name": "x", "provider": "slack", "config": ["webhook_url": "https://s.test/x"], "events": ["host.up"],
            ]).status == .created)
            await #expect(throws: ConfigError.self) {
                try await ChannelService.checkEncryptionKey(database: cp.assembly.database, settings: ChannelSettings())
            }
            try await ChannelService.checkEncryptionKey(database: cp.assembly.database, settings: ChannelSettings(encryptionKey: Self.key))
            // The real start-up path: a second control plane on the same database without the key fails to start.
            var config = cp.assembly.services.config
            config.channels = ChannelSettings()
            let logger = { var l = Logger(label: "wrenn.test.nokey"); l.logLevel = .critical; return l }()
            let second = try await ControlPlane.assemble(config: config, clock: cp.clock, logger: logger)
            let outcome = try await withThrowingTaskGroup(of: String.self) { group in
                group.addTask {
                    let app = ControlPlane.makeApplication(second, host: "127.0.0.1", port: 0, logger: logger)
                    do {
                        try await ServiceGroup(configuration: .init(services: [app], logger: logger)).run()
                        return "started and stopped"
                    } catch {
                        return "\(error)"
                    }
                }
                group.addTask { try await Task.sleep(for: .seconds(30)); return "still running after 30 s" }
                let first = try await group.next() ?? ""
                group.cancelAll()
                return first
            }
            #expect(outcome.contains("WRENN_ENCRYPTION_KEY"), "\(outcome)")
        }
    }

    @Test func wireTypesMatchTheSpec() throws {
        let schemas = try WireSchemaTests.schemas()
        let now = Date()
        let samples: [(String, any Encodable & Sendable)] = [
            ("CreateChannelRequest", CreateChannelRequest(name: "n", provider: "slack", config: ["webhook_url": "u"], events: ["host.up"])),
            ("TestChannelRequest", TestChannelRequest(provider: "slack", config: ["webhook_url": "u"])),
            ("RotateConfigRequest", RotateChannelConfigRequest(config: ["webhook_url": "u"])),
            ("UpdateChannelRequest", UpdateChannelRequest(name: "n", events: ["host.up"])),
            ("ChannelResponse", ChannelResponse(id: "ch-x", teamId: "team-x", name: "n", provider: "webhook", events: ["host.up"],
                                                createdAt: now, updatedAt: now, secret: "s")),
        ]
        for (name, sample) in samples {
            let (all, required) = WireSchemaTests.properties(name, in: schemas)
            #expect(!all.isEmpty, "\(name) is not in the spec")
            let keys = try WireSchemaTests.keys(sample)
            #expect(keys.subtracting(all).isEmpty, "\(name) encodes keys the spec does not have: \(keys.subtracting(all))")
            #expect(required.subtracting(keys).isEmpty, "\(name) misses required keys: \(required.subtracting(keys))")
        }
        // Channel provider and event enums are the contract's.
        let create = try #require(schemas["CreateChannelRequest"] as? [String: Any])
        let props = try #require(create["properties"] as? [String: Any])
        let providers = try #require((props["provider"] as? [String: Any])?["enum"] as? [String])
        #expect(Set(providers) == Set(ChannelProvider.allCases.map(\.rawValue)))
        let kinds = try #require(((props["events"] as? [String: Any])?["items"] as? [String: Any])?["enum"] as? [String])
        #expect(kinds == ChannelProvider.eventKinds)
    }

    /// Receivers must be public addresses unless the installation allows private ones: a team cannot point the
    /// control plane at loopback, private, link-local (metadata) or CGNAT addresses, neither as written (400 naming the
    /// field) nor through a name that resolves there (refused before any connection).
    @Test(arguments: TestBackend.available)
    func receiversMustBePublic(_ backend: TestBackend) async throws {
        try await TestControlPlane.run(backend, configure: Self.withKey) { cp in
            let b = try await cp.signedInUser(email: "ssrf@c.c")
            for (url, why) in [("http://127.0.0.1:9/h", "loopback"), ("http://10.11.12.13/h", "private"), ("https://172.20.0.1/h", "private"),
                               ("http://192.168.1.1/h", "private"), ("http://169.254.169.254/latest/meta-data", "link-local"),
                               ("http://100.64.0.1/h", "shared"), ("http://0.0.0.0:8080/h", "unspecified"), ("http://[::1]:8080/h", "loopback"),
                               ("http://[fd00::1]/h", "unique-local"), ("http://[::ffff:127.0.0.1]/h", "loopback"),
                               ("http://localhost:8080/h", "loopback name"), ("http://8888-cl-x.LOCALHOST/h", "loopback name")] {
                let created = try await b.post("/v1/channels", json: ["name": "x", "provider": "webhook", "config": ["url": url], "events": ["capsule.create"]])
                #expect(created.status == .badRequest, "\(url)")
                let message = created.errorMessage ?? ""
                #expect(message.hasPrefix("config.url: ") && message.contains(why) && message.contains("WRENN_CHANNELS_ALLOW_PRIVATE"), "\(url): \(message)")
            }
            let matrix = try await b.post("/v1/channels", json: ["name": "m", "provider": "matrix", "config": [
                "homeserver_url": "http://192.168.0.5:8008", "access_token": "t", "room_id": "!r:x"], "events": ["capsule.create"]])
            #expect(matrix.errorMessage?.hasPrefix("config.homeserver_url: ") == true)
            #expect(try await b.post("/v1/channels", json: ["name": "ok", "provider": "webhook", "config": ["url": "https://8.8.8.8/h"],
                                                            "events": ["capsule.create"]]).status == .created)
        }
        // A name is checked on what it resolves to, before connecting: refused, not "unreachable".
        let sender = ChannelSender(timeout: .seconds(2))
        let request = ProviderRequest(method: .POST, url: "http://localhost:1/h", headers: [], body: Data())
        await #expect { try await sender.send(request) } throws: { error in
            guard case ChannelDeliveryError.misconfigured(let why) = error else { return false }
            return why.contains("loopback")
        }
        #expect(ReceiverAddress.refusal("93.184.215.14") == nil && ReceiverAddress.refusal("2606:4700::1111") == nil)
        #expect(ReceiverAddress.refusal("fe80::1")?.contains("link-local") == true)
        #expect(ReceiverAddress.refusal("224.0.0.1")?.contains("multicast") == true)
        #expect(ReceiverAddress.refusal("172.32.0.1") == nil && ReceiverAddress.refusal("172.31.255.255") != nil)
    }

    @Test func encryptionKeyFormats() throws {
        let hex = String(repeating: "ab", count: 32)
        #expect(try ChannelSettings.parseKey(hex) == Data(repeating: 0xab, count: 32))
        #expect(try ChannelSettings.parseKey(Data(repeating: 7, count: 32).base64EncodedString()) == Data(repeating: 7, count: 32))
        #expect(throws: ConfigError.self) { try ChannelSettings.parseKey("abcd") }
        // `wrenn dev` keeps one generated key in its data directory.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wrenn-key-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try ChannelSettings.loadOrCreateKeyFile(dataDirectory: dir)
        #expect(try ChannelSettings.parseKey(first).count == 32)
        #expect(try ChannelSettings.loadOrCreateKeyFile(dataDirectory: dir) == first)
        let mode = try FileManager.default.attributesOfItem(atPath: dir + "/encryption-key")[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let env = try ServerConfig.fromEnvironment(["WRENN_DIR": FileManager.default.temporaryDirectory.path + "/wrenn-cfg-\(UUID().uuidString)",
                                                    "WRENN_ENCRYPTION_KEY": hex, "WRENN_TELEGRAM_API_URL": "http://127.0.0.1:1"],
                                                   dotEnvPath: "/nonexistent")
        #expect(env.channels.encryptionKey?.count == 32)
        #expect(env.channels.telegramAPIURL == "http://127.0.0.1:1")
        // Sealed values do not open under another key or for another channel.
        let sealed = try ChannelCipher(key: Self.key).seal(["url": "https://x.test"], channel: "ch-a")
        #expect(throws: (any Error).self) { try ChannelCipher(key: Data(repeating: 1, count: 32)).open(sealed, channel: "ch-a") }
        #expect(throws: (any Error).self) { try ChannelCipher(key: Self.key).open(sealed, channel: "ch-b") }
    }
}

extension Browser {
    /// `PUT` with a JSON body (the rotate-config operation).
    func putJSON(_ uri: String, json: [String: Any]) async throws -> TestResponse {
        try await send(uri, .put, body: Self.encode(json))
    }
}
