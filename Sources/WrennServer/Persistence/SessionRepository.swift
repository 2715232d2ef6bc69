import SQLKit

/// SQL for `sessions` (opaque cookie sessions; only hashes of the sid and CSRF token are stored).
enum SessionRepository {
    static let columns = "id, sid_hash, csrf_hash, user_id, team_id, user_agent, ip_address, created_at, last_seen_at, expires_at, revoked_at"

    static func insert(_ s: SessionRecord, _ sql: any SQLDatabase) async throws {
        try await sql.raw("""
            INSERT INTO sessions (\(unsafeRaw: columns)) VALUES (\(bind: s.id), \(bind: s.sidHash), \(bind: s.csrfHash),
            \(bind: s.userId), \(bind: s.teamId), \(bind: s.userAgent), \(bind: s.ipAddress), \(bind: s.createdAt),
            \(bind: s.lastSeenAt), \(bind: s.expiresAt), \(bind: s.revokedAt))
            """).run()
    }

    static func find(sidHash: String, _ sql: any SQLDatabase) async throws -> SessionRecord? {
        try await sql.raw("SELECT \(unsafeRaw: columns) FROM sessions WHERE sid_hash = \(bind: sidHash)").row(SessionRecord.self)
    }

    static func find(id: String, _ sql: any SQLDatabase) async throws -> SessionRecord? {
        try await sql.raw("SELECT \(unsafeRaw: columns) FROM sessions WHERE id = \(bind: id)").row(SessionRecord.self)
    }

    /// Sessions of `user` that are neither revoked nor past their absolute expiry.
    static func live(user: String, now: Int64, _ sql: any SQLDatabase) async throws -> [SessionRecord] {
        try await sql.raw("""
            SELECT \(unsafeRaw: columns) FROM sessions WHERE user_id = \(bind: user) AND revoked_at IS NULL
            AND expires_at > \(bind: now) ORDER BY created_at DESC
            """).rows(SessionRecord.self)
    }

    static func touch(id: String, at: Int64, _ sql: any SQLDatabase) async throws {
        try await sql.raw("UPDATE sessions SET last_seen_at = \(bind: at) WHERE id = \(bind: id)").run()
    }

    static func setTeam(id: String, team: String, _ sql: any SQLDatabase) async throws {
        try await sql.raw("UPDATE sessions SET team_id = \(bind: team) WHERE id = \(bind: id)").run()
    }

    static func revoke(id: String, at: Int64, _ sql: any SQLDatabase) async throws {
        try await sql.raw("UPDATE sessions SET revoked_at = \(bind: at) WHERE id = \(bind: id) AND revoked_at IS NULL").run()
    }

    static func revokeAll(user: String, at: Int64, _ sql: any SQLDatabase) async throws {
        try await sql.raw("UPDATE sessions SET revoked_at = \(bind: at) WHERE user_id = \(bind: user) AND revoked_at IS NULL").run()
    }
}
