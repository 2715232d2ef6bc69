import SQLKit

/// SQL for `audit_logs`, newest first with a (created_at, id) keyset cursor.
enum AuditRepository {
    static let columns = "id, team_id, actor_type, actor_id, actor_name, resource_type, resource_id, action, scope, status, metadata, created_at"

    static func insert(_ r: AuditRecord, _ sql: any SQLDatabase) async throws {
        try await sql.raw("""
            INSERT INTO audit_logs (\(unsafeRaw: columns)) VALUES (\(bind: r.id), \(bind: r.teamId), \(bind: r.actorType),
            \(bind: r.actorId), \(bind: r.actorName), \(bind: r.resourceType), \(bind: r.resourceId), \(bind: r.action),
            \(bind: r.scope), \(bind: r.status), \(bind: r.metadata), \(bind: r.createdAt))
            """).run()
    }

    /// One page of `team`'s entries visible to a caller: `scopes`, plus `user`-scope entries whose actor is `actor`.
    /// With `team` nil, every team's entries of every scope (platform admins).
    static func page(team: String?, scopes: [String]?, actor: String?, before: (Int64, String)?, limit: Int,
                     _ sql: any SQLDatabase) async throws -> [AuditRecord] {
        var query: SQLQueryString = "SELECT \(unsafeRaw: columns) FROM audit_logs WHERE 1 = 1"
        if let team {
            query.appendInterpolation(unsafeRaw: " AND team_id = ")
            query.appendInterpolation(bind: team)
        }
        if let scopes {
            query.appendInterpolation(unsafeRaw: " AND (scope IN (")
            query.appendInterpolation(binds: scopes)
            query.appendInterpolation(unsafeRaw: ")")
            if let actor {
                query.appendInterpolation(unsafeRaw: " OR (scope = 'user' AND actor_id = ")
                query.appendInterpolation(bind: actor)
                query.appendInterpolation(unsafeRaw: ")")
            }
            query.appendInterpolation(unsafeRaw: ")")
        }
        if let (time, id) = before {
            query.appendInterpolation(unsafeRaw: " AND (created_at < ")
            query.appendInterpolation(bind: time)
            query.appendInterpolation(unsafeRaw: " OR (created_at = ")
            query.appendInterpolation(bind: time)
            query.appendInterpolation(unsafeRaw: " AND id < ")
            query.appendInterpolation(bind: id)
            query.appendInterpolation(unsafeRaw: "))")
        }
        query.appendInterpolation(unsafeRaw: " ORDER BY created_at DESC, id DESC LIMIT ")
        query.appendInterpolation(bind: limit)
        return try await sql.raw(query).rows(AuditRecord.self)
    }

    /// Replaces a purged user's identity in the log with `deleted-user`.
    static func anonymize(actor: String, _ sql: any SQLDatabase) async throws {
        try await sql.raw("UPDATE audit_logs SET actor_id = NULL, actor_name = 'deleted-user' WHERE actor_id = \(bind: actor)").run()
    }
}
