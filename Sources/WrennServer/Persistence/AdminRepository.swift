import SQLKit

/// SQL the admin API needs across teams (the per-team repositories always filter by team).
enum AdminRepository {
    static func users(_ sql: any SQLDatabase) async throws -> [UserRecord] {
        try await sql.raw("SELECT \(unsafeRaw: UserRepository.columns) FROM users ORDER BY created_at ASC, id ASC").rows(UserRecord.self)
    }

    /// Ids of the active platform admins; on PostgreSQL the rows are locked until the transaction ends, so two
    /// concurrent revocations cannot both see the other admin and leave none.
    static func activeAdminIDs(lock: Bool, _ sql: any SQLDatabase) async throws -> [String] {
        try await sql.raw("""
            SELECT id FROM users WHERE is_admin = 1 AND status = 'active' ORDER BY id\(unsafeRaw: lock ? " FOR UPDATE" : "")
            """).all(decodingColumn: "id", as: String.self)
    }

    struct TeamRow: Codable, Sendable {
        var id: String
        var name: String
        var slug: String
        var isByoc: Int64
        var createdAt: Int64
        var memberCount: Int64
        var ownerId: String?
        var ownerEmail: String?
        var activeCapsules: Int64
    }

    /// Live teams with their member count, owner and number of capsules that are not stopped or errored.
    static func teams(_ sql: any SQLDatabase) async throws -> [TeamRow] {
        try await sql.raw("""
            SELECT t.id, t.name, t.slug, t.is_byoc, t.created_at,
              (SELECT COUNT(*) FROM team_members m WHERE m.team_id = t.id) AS member_count,
              (SELECT m.user_id FROM team_members m WHERE m.team_id = t.id AND m.role = 'owner' ORDER BY m.user_id LIMIT 1) AS owner_id,
              (SELECT u.email FROM team_members m JOIN users u ON u.id = m.user_id
                 WHERE m.team_id = t.id AND m.role = 'owner' ORDER BY m.user_id LIMIT 1) AS owner_email,
              (SELECT COUNT(*) FROM capsules c WHERE c.team_id = t.id AND c.status NOT IN ('stopped', 'error')) AS active_capsules
            FROM teams t WHERE t.deleted_at IS NULL ORDER BY t.created_at ASC, t.id ASC
            """).rows(TeamRow.self)
    }

    static func setBYOC(team: String, byoc: Bool, _ sql: any SQLDatabase) async throws {
        try await sql.raw("UPDATE teams SET is_byoc = \(bind: Int64(byoc ? 1 : 0)) WHERE id = \(bind: team)").run()
    }

    /// Capsules of every team that are not stopped or errored, newest first.
    static func liveCapsules(_ sql: any SQLDatabase) async throws -> [CapsuleRecord] {
        try await sql.raw("""
            SELECT \(unsafeRaw: CapsuleRepository.columns) FROM capsules WHERE status NOT IN ('stopped', 'error')
            ORDER BY created_at DESC, id DESC
            """).rows(CapsuleRecord.self)
    }

    static func templates(_ sql: any SQLDatabase) async throws -> [TemplateRecord] {
        try await sql.raw("SELECT \(unsafeRaw: TemplateRepository.columns) FROM templates ORDER BY created_at DESC, name, team_id")
            .rows(TemplateRecord.self)
    }

    static func template(team: String, name: String, _ sql: any SQLDatabase) async throws -> TemplateRecord? {
        try await sql.raw("SELECT \(unsafeRaw: TemplateRepository.columns) FROM templates WHERE team_id = \(bind: team) AND name = \(bind: name)")
            .row(TemplateRecord.self)
    }
}
