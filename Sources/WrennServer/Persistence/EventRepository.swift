import SQLKit

/// A row of `events`: the one durable, ordered log every lifecycle event is appended to.
struct EventRecord: Codable, Sendable {
    var seq: Int64
    var teamId: String
    var kind: String
    var payload: String
    var createdAt: Int64
}

/// SQL for `events`.
enum EventRepository {
    static func append(team: String, kind: String, payload: String, at: Int64, _ sql: any SQLDatabase) async throws {
        try await sql.raw("INSERT INTO events (team_id, kind, payload, created_at) VALUES (\(bind: team), \(bind: kind), \(bind: payload), \(bind: at))").run()
    }

    /// The team's events after `seq` (every team's when `team` is nil), oldest first.
    static func after(seq: Int64, team: String?, limit: Int, _ sql: any SQLDatabase) async throws -> [EventRecord] {
        if let team {
            return try await sql.raw("""
                SELECT seq, team_id, kind, payload, created_at FROM events WHERE team_id = \(bind: team) AND seq > \(bind: seq)
                ORDER BY seq ASC LIMIT \(bind: limit)
                """).rows(EventRecord.self)
        }
        return try await sql.raw("""
            SELECT seq, team_id, kind, payload, created_at FROM events WHERE seq > \(bind: seq) ORDER BY seq ASC LIMIT \(bind: limit)
            """).rows(EventRecord.self)
    }

    /// The newest sequence number (0 when empty).
    static func latestSeq(_ sql: any SQLDatabase) async throws -> Int64 {
        try await sql.raw("SELECT COALESCE(MAX(seq), 0) AS n FROM events").first(decodingColumn: "n", as: Int64.self) ?? 0
    }
}
