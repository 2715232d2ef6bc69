import SQLKit

/// A row of `channels`. `config` is a JSON object of AES-GCM-sealed values (see `ChannelCipher`), `eventTypes` a JSON
/// array of kinds. `deliveredSeq` is the channel's cursor in the event log: every event up to it has been delivered or
/// given up; `attempts`/`lastError` describe the failing attempts at the next one.
struct ChannelRecord: Codable, Sendable {
    var id: String
    var teamId: String
    var name: String
    var provider: String
    var config: String
    var eventTypes: String
    var createdAt: Int64
    var updatedAt: Int64
    var deliveredSeq: Int64
    var attempts: Int64
    var lastError: String?
}

/// SQL for `channels`.
enum ChannelRepository {
    static let columns = "id, team_id, name, provider, config, event_types, created_at, updated_at, delivered_seq, attempts, last_error"

    static func insert(_ c: ChannelRecord, _ sql: any SQLDatabase) async throws {
        try await sql.raw("""
            INSERT INTO channels (\(unsafeRaw: columns)) VALUES (\(bind: c.id), \(bind: c.teamId), \(bind: c.name), \(bind: c.provider),
            \(bind: c.config), \(bind: c.eventTypes), \(bind: c.createdAt), \(bind: c.updatedAt), \(bind: c.deliveredSeq),
            \(bind: c.attempts), \(bind: c.lastError))
            """).run()
    }

    static func list(team: String, _ sql: any SQLDatabase) async throws -> [ChannelRecord] {
        try await sql.raw("SELECT \(unsafeRaw: columns) FROM channels WHERE team_id = \(bind: team) ORDER BY created_at, id").rows(ChannelRecord.self)
    }

    /// Every channel, for the delivery worker.
    static func all(_ sql: any SQLDatabase) async throws -> [ChannelRecord] {
        try await sql.raw("SELECT \(unsafeRaw: columns) FROM channels ORDER BY id").rows(ChannelRecord.self)
    }

    static func find(id: String, team: String, _ sql: any SQLDatabase) async throws -> ChannelRecord? {
        try await sql.raw("SELECT \(unsafeRaw: columns) FROM channels WHERE id = \(bind: id) AND team_id = \(bind: team)").row(ChannelRecord.self)
    }

    static func find(id: String, _ sql: any SQLDatabase) async throws -> ChannelRecord? {
        try await sql.raw("SELECT \(unsafeRaw: columns) FROM channels WHERE id = \(bind: id)").row(ChannelRecord.self)
    }

    static func nameTaken(_ name: String, team: String, except id: String?, _ sql: any SQLDatabase) async throws -> Bool {
        try await sql.raw("""
            SELECT id FROM channels WHERE team_id = \(bind: team) AND name = \(bind: name) AND id <> \(bind: id ?? "")
            """).first() != nil
    }

    static func update(id: String, name: String, eventTypes: String, at: Int64, _ sql: any SQLDatabase) async throws {
        try await sql.raw("""
            UPDATE channels SET name = \(bind: name), event_types = \(bind: eventTypes), updated_at = \(bind: at) WHERE id = \(bind: id)
            """).run()
    }

    /// Replaces the sealed config; a fresh config also clears the failure state so the next event is tried at once.
    static func replaceConfig(id: String, config: String, at: Int64, _ sql: any SQLDatabase) async throws {
        try await sql.raw("""
            UPDATE channels SET config = \(bind: config), updated_at = \(bind: at), attempts = 0, last_error = NULL WHERE id = \(bind: id)
            """).run()
    }

    static func delete(id: String, _ sql: any SQLDatabase) async throws {
        try await sql.raw("DELETE FROM channels WHERE id = \(bind: id)").run()
    }

    static func count(_ sql: any SQLDatabase) async throws -> Int64 {
        try await sql.raw("SELECT COUNT(*) AS n FROM channels").first(decodingColumn: "n", as: Int64.self) ?? 0
    }

    /// Moves the cursor forward past `seq` (never backwards) and clears the failure state.
    static func advance(id: String, to seq: Int64, _ sql: any SQLDatabase) async throws {
        try await sql.raw("""
            UPDATE channels SET delivered_seq = \(bind: seq), attempts = 0, last_error = NULL
            WHERE id = \(bind: id) AND delivered_seq < \(bind: seq)
            """).run()
    }

    /// Records a failed attempt at the event after the cursor.
    static func recordFailure(id: String, attempts: Int64, error: String, _ sql: any SQLDatabase) async throws {
        try await sql.raw("UPDATE channels SET attempts = \(bind: attempts), last_error = \(bind: error) WHERE id = \(bind: id)").run()
    }
}

extension ChannelRepository {
    /// Migration 5: the `channels` table. A new channel's cursor starts at the newest event, so it is not flooded
    /// with history.
    @Sendable static func schema(_ kind: DatabaseKind) -> [String] {
        [
            """
            CREATE TABLE channels (
                id TEXT PRIMARY KEY, team_id TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE, name TEXT NOT NULL,
                provider TEXT NOT NULL, config TEXT NOT NULL, event_types TEXT NOT NULL, created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL, delivered_seq BIGINT NOT NULL DEFAULT 0, attempts BIGINT NOT NULL DEFAULT 0,
                last_error TEXT, UNIQUE (team_id, name))
            """,
        ]
    }
}
