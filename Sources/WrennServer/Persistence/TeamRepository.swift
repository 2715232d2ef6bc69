import SQLKit

/// SQL for `teams` and `team_members`.
enum TeamRepository {
    static let columns = "id, name, slug, is_byoc, created_at, deleted_at"

    static func find(id: String, _ sql: any SQLDatabase) async throws -> TeamRecord? {
        try await sql.raw("SELECT \(unsafeRaw: columns) FROM teams WHERE id = \(bind: id) AND deleted_at IS NULL").row(TeamRecord.self)
    }

    static func insert(_ t: TeamRecord, _ sql: any SQLDatabase) async throws {
        try await sql.raw("""
            INSERT INTO teams (id, name, slug, is_byoc, created_at, deleted_at)
            VALUES (\(bind: t.id), \(bind: t.name), \(bind: t.slug), \(bind: t.isByoc), \(bind: t.createdAt), \(bind: t.deletedAt))
            """).run()
    }

    static func rename(id: String, name: String, _ sql: any SQLDatabase) async throws {
        try await sql.raw("UPDATE teams SET name = \(bind: name) WHERE id = \(bind: id)").run()
    }

    static func softDelete(id: String, at: Int64, _ sql: any SQLDatabase) async throws {
        try await sql.raw("UPDATE teams SET deleted_at = \(bind: at) WHERE id = \(bind: id)").run()
    }

    static func membership(team: String, user: String, _ sql: any SQLDatabase) async throws -> MembershipRecord? {
        try await sql.raw("""
            SELECT m.team_id, m.user_id, m.role, m.is_default, m.joined_at FROM team_members m
            JOIN teams t ON t.id = m.team_id
            WHERE m.team_id = \(bind: team) AND m.user_id = \(bind: user) AND t.deleted_at IS NULL
            """).row(MembershipRecord.self)
    }

    struct TeamWithMembership: Codable, Sendable {
        var id: String
        var name: String
        var slug: String
        var createdAt: Int64
        var role: String
        var isDefault: Int64
    }

    /// Live teams of `user`, default team first, then oldest membership first.
    static func teams(ofUser user: String, _ sql: any SQLDatabase) async throws -> [TeamWithMembership] {
        try await sql.raw("""
            SELECT t.id, t.name, t.slug, t.created_at, m.role, m.is_default FROM team_members m
            JOIN teams t ON t.id = m.team_id
            WHERE m.user_id = \(bind: user) AND t.deleted_at IS NULL
            ORDER BY m.is_default DESC, m.joined_at ASC, t.id ASC
            """).rows(TeamWithMembership.self)
    }

    struct MemberRow: Codable, Sendable {
        var userId: String
        var email: String
        var role: String
        var joinedAt: Int64
    }

    static func members(team: String, _ sql: any SQLDatabase) async throws -> [MemberRow] {
        try await sql.raw("""
            SELECT m.user_id, u.email, m.role, m.joined_at FROM team_members m JOIN users u ON u.id = m.user_id
            WHERE m.team_id = \(bind: team) ORDER BY m.joined_at ASC, m.user_id ASC
            """).rows(MemberRow.self)
    }

    static func addMember(team: String, user: String, role: String, isDefault: Bool, at: Int64, _ sql: any SQLDatabase) async throws {
        try await sql.raw("""
            INSERT INTO team_members (team_id, user_id, role, is_default, joined_at)
            VALUES (\(bind: team), \(bind: user), \(bind: role), \(bind: Int64(isDefault ? 1 : 0)), \(bind: at))
            """).run()
    }

    static func setRole(team: String, user: String, role: String, _ sql: any SQLDatabase) async throws {
        try await sql.raw("UPDATE team_members SET role = \(bind: role) WHERE team_id = \(bind: team) AND user_id = \(bind: user)").run()
    }

    static func removeMember(team: String, user: String, _ sql: any SQLDatabase) async throws {
        try await sql.raw("DELETE FROM team_members WHERE team_id = \(bind: team) AND user_id = \(bind: user)").run()
    }

    static func memberCount(team: String, _ sql: any SQLDatabase) async throws -> Int64 {
        try await sql.raw("SELECT COUNT(*) AS n FROM team_members WHERE team_id = \(bind: team)").first(decodingColumn: "n", as: Int64.self) ?? 0
    }

    static func slugExists(_ slug: String, _ sql: any SQLDatabase) async throws -> Bool {
        try await sql.raw("SELECT id FROM teams WHERE slug = \(bind: slug)").first() != nil
    }
}

extension TeamRepository {
    static func removeAllMemberships(user: String, _ sql: any SQLDatabase) async throws {
        try await sql.raw("DELETE FROM team_members WHERE user_id = \(bind: user)").run()
    }
}
