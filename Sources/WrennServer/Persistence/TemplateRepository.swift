import SQLKit

/// A row of `templates`: base images (platform) and snapshot templates (per team).
struct TemplateRecord: Codable, Sendable {
    var teamId: String
    var name: String
    var type: String
    var vcpus: Int64?
    var memoryMb: Int64?
    var sizeBytes: Int64
    var hostId: String?
    var createdAt: Int64
    var metadata: String
}

/// SQL for `templates`. A team sees its own templates and the platform's.
enum TemplateRepository {
    static let columns = "team_id, name, type, vcpus, memory_mb, size_bytes, host_id, created_at, metadata"

    /// The template `name` as `team` sees it: the team's own first, else the platform's.
    static func visible(name: String, team: String, _ sql: any SQLDatabase) async throws -> TemplateRecord? {
        try await sql.raw("""
            SELECT \(unsafeRaw: columns) FROM templates WHERE name = \(bind: name)
            AND team_id IN (\(bind: team), \(bind: Migrations.platformTeamID))
            ORDER BY CASE WHEN team_id = \(bind: team) THEN 0 ELSE 1 END LIMIT 1
            """).row(TemplateRecord.self)
    }

    static func list(team: String, type: String?, _ sql: any SQLDatabase) async throws -> [TemplateRecord] {
        if let type {
            return try await sql.raw("""
                SELECT \(unsafeRaw: columns) FROM templates WHERE team_id IN (\(bind: team), \(bind: Migrations.platformTeamID))
                AND type = \(bind: type) ORDER BY created_at DESC, name
                """).rows(TemplateRecord.self)
        }
        return try await sql.raw("""
            SELECT \(unsafeRaw: columns) FROM templates WHERE team_id IN (\(bind: team), \(bind: Migrations.platformTeamID))
            ORDER BY created_at DESC, name
            """).rows(TemplateRecord.self)
    }

    static func insert(_ t: TemplateRecord, _ sql: any SQLDatabase) async throws {
        try await sql.raw("""
            INSERT INTO templates (\(unsafeRaw: columns)) VALUES (\(bind: t.teamId), \(bind: t.name), \(bind: t.type), \(bind: t.vcpus),
            \(bind: t.memoryMb), \(bind: t.sizeBytes), \(bind: t.hostId), \(bind: t.createdAt), \(bind: t.metadata))
            """).run()
    }

    static func delete(team: String, name: String, _ sql: any SQLDatabase) async throws {
        try await sql.raw("DELETE FROM templates WHERE team_id = \(bind: team) AND name = \(bind: name)").run()
    }
}
