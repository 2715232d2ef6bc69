import Foundation
import Logging
import WrennWire

/// Team notification channels (tag `channels`): create, list, get, rename/resubscribe, rotate config, delete, and a
/// test send that saves nothing. Every team member may manage the team's channels (reference Appendix D); another
/// team's channel is 404. Provider configs are sealed with AES-256-GCM before they touch the database and are never
/// returned, except a webhook's signing secret in the response that created it.
public struct ChannelService: Sendable {
    let database: Database
    let clock: any WallClock
    let audit: AuditService
    let settings: ChannelSettings
    let sender: ChannelSender
    let logger: Logger

    var cipher: ChannelCipher? { settings.encryptionKey.map(ChannelCipher.init(key:)) }

    func requireCipher() throws -> ChannelCipher {
        guard let cipher else {
            throw ServiceError(.unavailable, "encryption_unavailable",
                               "notification channels need WRENN_ENCRYPTION_KEY (32 bytes, hex or base64) set on the control plane")
        }
        return cipher
    }

    public func create(_ principal: Principal, _ request: CreateChannelRequest) async throws -> ChannelResponse {
        _ = try principal.requireUser()
        let team = try principal.requireTeam()
        let name = try ChannelProvider.channelName(request.name)
        let provider = try ChannelProvider.parse(request.provider)
        let config = try provider.validate(request.config, allowPrivate: settings.allowPrivateReceivers)
        let events = try ChannelProvider.eventList(request.events)
        let cipher = try requireCipher()
        let id = PrefixedID.make(.channel)
        let now = clock.now().millis
        let sealed = try cipher.seal(config, channel: id)
        let record = try await database.transaction { sql -> ChannelRecord in
            guard try await !ChannelRepository.nameTaken(name, team: team, except: nil, sql) else { throw Self.nameConflict(name) }
            let record = ChannelRecord(id: id, teamId: team, name: name, provider: provider.rawValue, config: sealed,
                                       eventTypes: Self.encodeEvents(events), createdAt: now, updatedAt: now,
                                       deliveredSeq: try await EventRepository.latestSeq(sql), attempts: 0, lastError: nil)
            try await ChannelRepository.insert(record, sql)
            try await audit.record(.init(team: team, actor: principal.actor, resourceType: "channel", resourceID: id, action: "create",
                                         metadata: ["name": name, "provider": provider.rawValue]), sql)
            return record
        }
        return Self.response(record, secret: provider == .webhook ? config["secret"] : nil)
    }

    public func list(_ principal: Principal) async throws -> [ChannelResponse] {
        _ = try principal.requireUser()
        let team = try principal.requireTeam()
        return try await database.read { sql in try await ChannelRepository.list(team: team, sql) }.map { Self.response($0, secret: nil) }
    }

    public func get(_ principal: Principal, id: String) async throws -> ChannelResponse {
        _ = try principal.requireUser()
        let team = try principal.requireTeam()
        guard let record = try await database.read({ sql in try await ChannelRepository.find(id: id, team: team, sql) }) else {
            throw ServiceError.notFound("channel")
        }
        return Self.response(record, secret: nil)
    }

    public func update(_ principal: Principal, id: String, _ request: UpdateChannelRequest) async throws -> ChannelResponse {
        _ = try principal.requireUser()
        let team = try principal.requireTeam()
        let name = try ChannelProvider.channelName(request.name)
        let events = try ChannelProvider.eventList(request.events)
        let now = clock.now().millis
        let record = try await database.transaction { sql -> ChannelRecord in
            guard var record = try await ChannelRepository.find(id: id, team: team, sql) else { throw ServiceError.notFound("channel") }
            guard try await !ChannelRepository.nameTaken(name, team: team, except: id, sql) else { throw Self.nameConflict(name) }
            record.name = name
            record.eventTypes = Self.encodeEvents(events)
            record.updatedAt = now
            try await ChannelRepository.update(id: id, name: name, eventTypes: record.eventTypes, at: now, sql)
            try await audit.record(.init(team: team, actor: principal.actor, resourceType: "channel", resourceID: id, action: "update",
                                         metadata: ["name": name]), sql)
            return record
        }
        return Self.response(record, secret: nil)
    }

    /// Replaces the config entirely. A webhook rotated without a `secret` gets a new generated one, returned in this
    /// response only (it is the one chance to learn it); a secret the caller chose is not echoed.
    public func rotateConfig(_ principal: Principal, id: String, _ request: RotateChannelConfigRequest) async throws -> ChannelResponse {
        _ = try principal.requireUser()
        let team = try principal.requireTeam()
        let existing = try await database.read { sql in try await ChannelRepository.find(id: id, team: team, sql) }
        guard let existing else { throw ServiceError.notFound("channel") }
        guard let provider = ChannelProvider(rawValue: existing.provider) else { throw ServiceError.notFound("channel") }
        let config = try provider.validate(request.config, allowPrivate: settings.allowPrivateReceivers)
        let sealed = try requireCipher().seal(config, channel: id)
        let generated = provider == .webhook && (request.config["secret"]?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "").isEmpty
        let now = clock.now().millis
        let record = try await database.transaction { sql -> ChannelRecord in
            guard var record = try await ChannelRepository.find(id: id, team: team, sql) else { throw ServiceError.notFound("channel") }
            try await ChannelRepository.replaceConfig(id: id, config: sealed, at: now, sql)
            try await audit.record(.init(team: team, actor: principal.actor, resourceType: "channel", resourceID: id,
                                         action: "rotate_config"), sql)
            record.updatedAt = now
            return record
        }
        return Self.response(record, secret: generated ? config["secret"] : nil)
    }

    public func delete(_ principal: Principal, id: String) async throws {
        _ = try principal.requireUser()
        let team = try principal.requireTeam()
        try await database.transaction { sql in
            guard let record = try await ChannelRepository.find(id: id, team: team, sql) else { throw ServiceError.notFound("channel") }
            try await ChannelRepository.delete(id: id, sql)
            try await audit.record(.init(team: team, actor: principal.actor, resourceType: "channel", resourceID: id, action: "delete",
                                         metadata: ["name": record.name]), sql)
        }
    }

    /// Sends one `channel.test` notification with `request`'s provider and config, saving nothing. A receiver that
    /// refuses or cannot be reached is a 400 `channel_test_failed` saying why.
    public func test(_ principal: Principal, _ request: TestChannelRequest) async throws -> ChannelTestResult {
        let user = try principal.requireUser()
        let team = try principal.requireTeam()
        let provider = try ChannelProvider.parse(request.provider)
        let config = try provider.validate(request.config, allowPrivate: settings.allowPrivateReceivers)
        let now = clock.now()
        let event = SSEEvent(event: "channel.test", outcome: "success", resource: .init(id: "channel-test", type: "channel"),
                             actor: .init(type: "user", id: user, name: principal.email), timestamp: now)
        let notification = ChannelNotification(deliveryID: UUID().uuidString.lowercased(), team: team, event: event)
        let outgoing = try ProviderRequest.make(provider: provider, config: config, notification: notification,
                                                telegramAPIURL: settings.telegramAPIURL, now: now)
        do {
            try await sender.send(outgoing)
        } catch let error as ChannelDeliveryError {
            throw ServiceError(.badRequest, "channel_test_failed", "test notification not delivered: \(error)")
        }
        return ChannelTestResult(status: "ok")
    }

    /// Refuses to start when channels exist but no key is configured: their configs could not be read, and
    /// deliveries would silently stop.
    static func checkEncryptionKey(database: Database, settings: ChannelSettings) async throws {
        guard settings.encryptionKey == nil else { return }
        let count = try await database.read { sql in try await ChannelRepository.count(sql) }
        if count > 0 {
            throw ConfigError("""
                \(count) notification channel(s) exist but WRENN_ENCRYPTION_KEY is not set: their configs are encrypted with it. \
                Set WRENN_ENCRYPTION_KEY to the key they were created with (64 hex characters or base64 of 32 bytes).
                """)
        }
    }

    static func nameConflict(_ name: String) -> ServiceError {
        .conflict("channel_name_taken", "a channel named \(name) already exists in this team")
    }

    static func encodeEvents(_ events: [String]) -> String {
        (try? String(decoding: JSONEncoder.sorted.encode(events), as: UTF8.self)) ?? "[]"
    }

    static func decodeEvents(_ text: String) -> [String] {
        (try? JSONDecoder().decode([String].self, from: Data(text.utf8))) ?? []
    }

    static func response(_ r: ChannelRecord, secret: String?) -> ChannelResponse {
        ChannelResponse(id: r.id, teamId: r.teamId, name: r.name, provider: r.provider, events: decodeEvents(r.eventTypes),
                        createdAt: Date(millis: r.createdAt), updatedAt: Date(millis: r.updatedAt), secret: secret)
    }
}
