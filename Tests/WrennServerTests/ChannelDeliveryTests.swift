import Crypto
import Foundation
import HummingbirdTesting
import Logging
import SQLKit
import Testing
@testable import WrennServer
import WrennWire

/// Channel delivery from the event log to real HTTP receivers on loopback, on both databases: each provider's request
/// format, webhook signatures, retries in order, isolation from a dead receiver, and the test send.
@Suite("Notification channel delivery")
struct ChannelDeliveryTests {
    static func configure(_ receiver: String) -> (inout ServerConfig) -> Void {
        { config in
            config.channels = ChannelSettings(encryptionKey: ChannelAPITests.key, telegramAPIURL: receiver, pollInterval: .milliseconds(50),
                                              retryBaseDelay: .milliseconds(300), retryMaxDelay: .seconds(1), maxAttempts: 5,
                                              requestTimeout: .seconds(5), allowPrivateReceivers: true) // the receivers are on loopback
        }
    }

    /// Appends `kind` for `team` to the event log the way the services do.
    static func append(_ cp: TestControlPlane, _ kind: String, team: String, resource: String) async throws {
        let event = SSEEvent(event: kind, outcome: "success", resource: .init(id: resource, type: "capsule"),
                             actor: .init(type: "user", id: "usr-1", name: "ana@example.test"), timestamp: cp.clock.now())
        let log = cp.assembly.services.events
        try await cp.assembly.database.transaction { sql in try await log.append(event, team: team, sql) }
    }

    static func create(_ b: Browser, _ name: String, _ provider: String, _ config: [String: String], events: [String]) async throws -> ChannelResponse {
        let r = try await b.post("/v1/channels", json: ["name": name, "provider": provider, "config": config, "events": events])
        #expect(r.status == .created, "\(provider): \(r.errorMessage ?? "")")
        return try r.decode(ChannelResponse.self)
    }

    @Test(arguments: TestBackend.available)
    func everyProviderGetsItsFormat(_ backend: TestBackend) async throws {
        let receiver = ChannelReceiver()
        try await receiver.run { base in
            try await TestControlPlane.run(backend, configure: Self.configure(base)) { cp in
                let b = try await cp.signedInUser(email: "fmt@c.c")
                let events = ["capsule.create"]
                _ = try await Self.create(b, "discord", "discord", ["webhook_url": "\(base)/discord/api/webhooks/1/tok"], events: events)
                _ = try await Self.create(b, "slack", "slack", ["webhook_url": "\(base)/slack/services/T/B/X"], events: events)
                _ = try await Self.create(b, "teams", "teams", ["webhook_url": "\(base)/teams/webhookb2/x"], events: events)
                _ = try await Self.create(b, "gchat", "googlechat", ["webhook_url": "\(base)/gchat/v1/spaces/S/messages?key=k"], events: events)
                _ = try await Self.create(b, "tg", "telegram", ["bot_token": "123456:ABC-def", "chat_id": "-1001"], events: events)
                _ = try await Self.create(b, "mx", "matrix", ["homeserver_url": base, "access_token": "syt_secret_token",
                                                              "room_id": "!room:m.test"], events: events)
                let hook = try await Self.create(b, "hook", "webhook", ["url": "\(base)/webhook"], events: events)
                let secret = try #require(hook.secret)
                let team = hook.teamId

                try await Self.append(cp, "capsule.create", team: team, resource: "cl-one")

                let discord = try await receiver.waitFor(1, path: "/discord")[0]
                #expect(discord.method == "POST" && discord.path == "/discord/api/webhooks/1/tok")
                #expect((discord.json["content"] as? String)?.contains("Capsule created") == true)
                let embed = (discord.json["embeds"] as? [[String: Any]])?.first
                #expect(embed?["title"] as? String == "Capsule created")
                #expect((embed?["fields"] as? [[String: Any]])?.contains { $0["value"] as? String == "capsule cl-one" } == true)

                let slack = try await receiver.waitFor(1, path: "/slack")[0]
                #expect((slack.json["text"] as? String)?.contains("cl-one") == true)
                #expect((slack.json["blocks"] as? [[String: Any]])?.first?["type"] as? String == "header")

                let teams = try await receiver.waitFor(1, path: "/teams")[0]
                #expect(teams.json["@type"] as? String == "MessageCard")
                #expect(teams.json["@context"] as? String == "https://schema.org/extensions")
                #expect(teams.json["title"] as? String == "Wrenn: Capsule created")

                let gchat = try await receiver.waitFor(1, path: "/gchat")[0]
                #expect((gchat.json["text"] as? String)?.hasPrefix("Wrenn: Capsule created") == true)

                let telegram = try await receiver.waitFor(1, path: "/bot")[0]
                #expect(telegram.method == "POST" && telegram.path == "/bot123456:ABC-def/sendMessage")
                #expect(telegram.json["chat_id"] as? String == "-1001")
                #expect((telegram.json["text"] as? String)?.contains("Team: \(team)") == true)

                let matrix = try await receiver.waitFor(1, path: "/_matrix")[0]
                #expect(matrix.method == "PUT")
                let prefix = "/_matrix/client/v3/rooms/"
                let rest = matrix.path.dropFirst(prefix.count)
                #expect(rest.hasPrefix("%21room%3Am.test/send/m.room.message/") || rest.hasPrefix("!room:m.test/send/m.room.message/"))
                #expect(matrix.header("Authorization") == "Bearer syt_secret_token")
                #expect(matrix.json["msgtype"] as? String == "m.text")
                #expect((matrix.json["body"] as? String)?.contains("capsule.create") == true)

                let webhook = try await receiver.waitFor(1, path: "/webhook")[0]
                let timestamp = try #require(webhook.header("X-Wrenn-Timestamp"))
                let signature = try #require(webhook.header("X-Wrenn-Signature"))
                #expect(WireCoding.parseDate(timestamp) != nil)
                #expect(signature == Self.expectedSignature(secret: secret, timestamp: timestamp, body: webhook.body))
                #expect(signature != Self.expectedSignature(secret: "wrong", timestamp: timestamp, body: webhook.body))
                let body = try WireCoding.makeDecoder().decode(ChannelWebhookBody.self, from: webhook.body)
                #expect(body.event.event == "capsule.create" && body.teamId == team && body.event.resource?.id == "cl-one")
                #expect(webhook.header("X-Wrenn-Delivery") == body.deliveryId)
                #expect(UUID(uuidString: body.deliveryId) != nil)
                #expect(webhook.header("Content-Type") == "application/json")

                // One event, one request each: seven receivers in all.
                try await Task.sleep(for: .milliseconds(300))
                #expect(receiver.requests().count == 7)
            }
        }
    }

    static func expectedSignature(secret: String, timestamp: String, body: Data) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data((timestamp + ".").utf8) + body, using: SymmetricKey(data: Data(secret.utf8)))
        return "sha256=" + mac.map { String(format: "%02x", $0) }.joined()
    }

    @Test(arguments: TestBackend.available)
    func failedDeliveryIsRetriedBeforeLaterEvents(_ backend: TestBackend) async throws {
        let receiver = ChannelReceiver()
        try await receiver.run { base in
            try await TestControlPlane.run(backend, configure: Self.configure(base)) { cp in
                let b = try await cp.signedInUser(email: "retry@c.c")
                // History before the channel exists is not replayed to it.
                let team = try await b.get("/v1/teams").decode([TeamWithRole].self)[0].id
                try await Self.append(cp, "capsule.create", team: team, resource: "cl-old")
                let hook = try await Self.create(b, "hook", "webhook", ["url": "\(base)/webhook"], events: ["capsule.create", "capsule.destroy"])
                receiver.script("/webhook", statuses: [500])

                try await Self.append(cp, "capsule.create", team: team, resource: "cl-1")
                try await Self.append(cp, "capsule.pause", team: team, resource: "cl-1") // not subscribed
                try await Self.append(cp, "capsule.destroy", team: team, resource: "cl-1")
                let got = try await receiver.waitFor(3, path: "/webhook")
                let bodies = try got.map { try WireCoding.makeDecoder().decode(ChannelWebhookBody.self, from: $0.body) }
                #expect(bodies.map(\.event.event) == ["capsule.create", "capsule.create", "capsule.destroy"])
                #expect(bodies[0].deliveryId == bodies[1].deliveryId) // the retry is the same delivery
                #expect(got[1].at - got[0].at >= .milliseconds(300)) // after the backoff
                #expect(bodies[1].deliveryId != bodies[2].deliveryId)
                #expect(!bodies.contains { $0.event.resource?.id == "cl-old" })

                // The cursor is persisted at the newest event and the failure state is cleared.
                try await Task.sleep(for: .milliseconds(300))
                #expect(receiver.requests(path: "/webhook").count == 3)
                let latest = try await cp.assembly.services.events.latestSeq()
                let row = try await cp.assembly.database.read { sql in
                    try await sql.raw("SELECT delivered_seq, attempts FROM channels WHERE id = \(bind: hook.id)").first()
                }
                #expect(try row?.decode(column: "delivered_seq", as: Int64.self) == latest)
                #expect(try row?.decode(column: "attempts", as: Int64.self) == 0)

                // Another team's events never reach this channel.
                let other = try await cp.signedInUser(email: "retry-other@c.c")
                let otherTeam = try await other.get("/v1/teams").decode([TeamWithRole].self)[0].id
                try await Self.append(cp, "capsule.create", team: otherTeam, resource: "cl-theirs")
                try await Task.sleep(for: .milliseconds(300))
                #expect(receiver.requests(path: "/webhook").count == 3)
            }
        }
    }

    /// After `maxAttempts` failures an event is given up, so the channel moves on to the next one.
    @Test(arguments: TestBackend.available)
    func anEventIsGivenUpAfterMaxAttempts(_ backend: TestBackend) async throws {
        let receiver = ChannelReceiver()
        try await receiver.run { base in
            let configure: (inout ServerConfig) -> Void = { config in
                Self.configure(base)(&config)
                config.channels.maxAttempts = 3
                config.channels.retryBaseDelay = .milliseconds(100)
            }
            try await TestControlPlane.run(backend, configure: configure) { cp in
                let b = try await cp.signedInUser(email: "giveup@c.c")
                let hook = try await Self.create(b, "hook", "webhook", ["url": "\(base)/webhook"], events: ["capsule.create"])
                receiver.script("/webhook", statuses: [500, 502, 503])
                try await Self.append(cp, "capsule.create", team: hook.teamId, resource: "cl-doomed")
                try await Self.append(cp, "capsule.create", team: hook.teamId, resource: "cl-next")
                let got = try await receiver.waitFor(4, path: "/webhook")
                let ids = try got.map { try WireCoding.makeDecoder().decode(ChannelWebhookBody.self, from: $0.body).event.resource?.id }
                #expect(ids == ["cl-doomed", "cl-doomed", "cl-doomed", "cl-next"])
                try await Task.sleep(for: .milliseconds(300))
                #expect(receiver.requests(path: "/webhook").count == 4)
            }
        }
    }

    /// A control plane stopped while an event is pending delivers it after the restart, once, and repeats nothing
    /// delivered before (the cursor and the failure count live in the database).
    @Test(arguments: TestBackend.available)
    func restartResumesFromThePersistedCursor(_ backend: TestBackend) async throws {
        let receiver = ChannelReceiver()
        try await receiver.run { base in
            let (url, drop) = try await backend.makeDatabase()
            let dataDir = FileManager.default.temporaryDirectory.appendingPathComponent("wrenn-data-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dataDir) }
            let clock = ManualWallClock()
            @Sendable func serve(_ body: @Sendable (TestControlPlane) async throws -> Void) async throws {
                var config = ServerConfig(dataDirectory: dataDir, databaseURL: url, secret: String(repeating: "s", count: 40), bcryptCost: 4)
                Self.configure(base)(&config)
                var logger = Logger(label: "wrenn.test")
                logger.logLevel = .critical
                let assembly = try await ControlPlane.assemble(config: config, clock: clock, logger: logger)
                let app = ControlPlane.makeApplication(assembly, host: "127.0.0.1", port: 0, logger: logger)
                try await app.test(.live) { client in
                    try await body(TestControlPlane(client: client, clock: clock, assembly: assembly, backend: backend))
                }
            }
            do {
                try await serve { cp in
                    let b = try await cp.signedInUser(email: "restart@c.c")
                    let hook = try await Self.create(b, "hook", "webhook", ["url": "\(base)/webhook"], events: ["capsule.create"])
                    try await Self.append(cp, "capsule.create", team: hook.teamId, resource: "cl-before")
                    _ = try await receiver.waitFor(1, path: "/webhook")
                    receiver.script("/webhook", statuses: Array(repeating: 503, count: 100))
                    try await Self.append(cp, "capsule.create", team: hook.teamId, resource: "cl-pending")
                    _ = try await receiver.waitFor(2, path: "/webhook")
                }
                // Down: the pending event failed at least once and is still after the cursor.
                let failedSoFar = receiver.requests(path: "/webhook").count - 1
                #expect(failedSoFar >= 1)
                receiver.clearScript("/webhook")
                try await serve { cp in
                    let got = try await receiver.waitFor(failedSoFar + 2, path: "/webhook")
                    let bodies = try got.map { try WireCoding.makeDecoder().decode(ChannelWebhookBody.self, from: $0.body) }
                    #expect(bodies.filter { $0.event.resource?.id == "cl-before" }.count == 1)
                    #expect(bodies.dropFirst().allSatisfy { $0.event.resource?.id == "cl-pending" })
                    #expect(Set(bodies.dropFirst().map(\.deliveryId)).count == 1)
                    try await Task.sleep(for: .milliseconds(300))
                    #expect(receiver.requests(path: "/webhook").count == failedSoFar + 2)
                }
            } catch {
                await drop()
                throw error
            }
            await drop()
        }
    }

    @Test(arguments: TestBackend.available)
    func aDeadReceiverDoesNotBlockOthers(_ backend: TestBackend) async throws {
        let receiver = ChannelReceiver()
        try await receiver.run { base in
            try await TestControlPlane.run(backend, configure: Self.configure(base)) { cp in
                let b = try await cp.signedInUser(email: "iso@c.c")
                let events = ["capsule.create"]
                // One receiver never answers, one refuses connections, one works.
                _ = try await Self.create(b, "hung", "webhook", ["url": "\(base)/hang"], events: events)
                _ = try await Self.create(b, "refused", "slack", ["webhook_url": "http://127.0.0.1:1/slack"], events: events)
                let good = try await Self.create(b, "good", "slack", ["webhook_url": "\(base)/slack"], events: events)
                let start = ContinuousClock.now
                try await Self.append(cp, "capsule.create", team: good.teamId, resource: "cl-a")
                try await Self.append(cp, "capsule.create", team: good.teamId, resource: "cl-b")
                let delivered = try await receiver.waitFor(2, path: "/slack", timeout: .seconds(4))
                #expect(ContinuousClock.now - start < .seconds(4)) // well inside the hung request's 5 s deadline
                #expect(delivered.map { ($0.json["text"] as? String)?.contains("cl-a") == true } == [true, false])
                #expect(receiver.requests(path: "/hang").count == 1) // still held, not yet retried
                // The refusing channel records its failures (the HTTP client retries connecting until its connect
                // timeout, so this takes a few seconds) and keeps the event for a retry.
                var lastError: String?
                for _ in 0..<200 {
                    let row = try await cp.assembly.database.read { sql in
                        try await sql.raw("SELECT attempts, last_error, delivered_seq FROM channels WHERE name = 'refused'").first()
                    }
                    lastError = try row?.decode(column: "last_error", as: String?.self)
                    if lastError != nil {
                        #expect(try row?.decode(column: "attempts", as: Int64.self) ?? 0 >= 1)
                        #expect(try row?.decode(column: "delivered_seq", as: Int64.self) == 0)
                        break
                    }
                    try await Task.sleep(for: .milliseconds(50))
                }
                #expect(lastError?.contains("unreachable") == true)
                receiver.release()
            }
        }
    }

    @Test(arguments: TestBackend.available)
    func testSendSavesNothing(_ backend: TestBackend) async throws {
        let receiver = ChannelReceiver()
        try await receiver.run { base in
            try await TestControlPlane.run(backend, configure: Self.configure(base)) { cp in
                let b = try await cp.signedInUser(email: "test@c.c")
                let ok = try await b.post("/v1/channels/test", json: ["provider": "slack", "config": ["webhook_url": "\(base)/slack"]])
                #expect(ok.status == .ok)
                #expect(try ok.decode(ChannelTestResult.self).status == "ok")
                let sent = try await receiver.waitFor(1, path: "/slack")[0]
                #expect((sent.json["text"] as? String)?.contains("Test notification") == true)
                #expect((sent.json["text"] as? String)?.contains("channel.test") == true)

                let tg = try await b.post("/v1/channels/test", json: ["provider": "telegram", "config": ["bot_token": "9:x", "chat_id": "42"]])
                #expect(tg.status == .ok)
                #expect(try await receiver.waitFor(1, path: "/bot9:x/sendMessage")[0].json["chat_id"] as? String == "42")

                receiver.script("/slack", statuses: [403])
                let refused = try await b.post("/v1/channels/test", json: ["provider": "slack", "config": ["webhook_url": "\(base)/slack"]])
                #expect(refused.status == .badRequest)
                #expect(refused.errorCode == "channel_test_failed")
                #expect(refused.errorMessage?.contains("403") == true)
                let invalid = try await b.post("/v1/channels/test", json: ["provider": "matrix", "config": ["homeserver_url": base]])
                #expect(invalid.status == .badRequest && invalid.errorMessage?.hasPrefix("config.access_token:") == true)
                #expect(try await b.get("/v1/channels").decode([ChannelResponse].self).isEmpty)
                #expect(try await cp.browser().post("/v1/channels/test", json: ["provider": "slack", "config": ["webhook_url": "\(base)/slack"]])
                    .status == .unauthorized)
            }
        }
    }
}
