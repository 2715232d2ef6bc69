import SQLKit

/// SQL for the `users` table.
enum UserRepository {
    static let columns = "id, email, password_hash, name, is_admin, status, created_at, updated_at, deleted_at"

    static func find(id: String, _ sql: any SQLDatabase) async throws -> UserRecord? {
        try await sql.raw("SELECT \(unsafeRaw: columns) FROM users WHERE id = \(bind: id)").row(UserRecord.self)
    }

    static func find(email: String, _ sql: any SQLDatabase) async throws -> UserRecord? {
        try await sql.raw("SELECT \(unsafeRaw: columns) FROM users WHERE email = \(bind: email)").row(UserRecord.self)
    }

    static func insert(_ u: UserRecord, _ sql: any SQLDatabase) async throws {
        try await sql.raw("""
            INSERT INTO users (id, email, password_hash, name, is_admin, status, created_at, updated_at, deleted_at)
            VALUES (\(bind: u.id), \(bind: u.email), \(bind: u.passwordHash), \(bind: u.name), \(bind: u.isAdmin),
                    \(bind: u.status), \(bind: u.createdAt), \(bind: u.updatedAt), \(bind: u.deletedAt))
            """).run()
    }

    static func delete(id: String, _ sql: any SQLDatabase) async throws {
        try await sql.raw("DELETE FROM users WHERE id = \(bind: id)").run()
    }

    static func setStatus(id: String, status: UserStatus, deletedAt: Int64?, now: Int64, _ sql: any SQLDatabase) async throws {
        try await sql.raw("UPDATE users SET status = \(bind: status.rawValue), deleted_at = \(bind: deletedAt), updated_at = \(bind: now) WHERE id = \(bind: id)").run()
    }

    static func setName(id: String, name: String, now: Int64, _ sql: any SQLDatabase) async throws {
        try await sql.raw("UPDATE users SET name = \(bind: name), updated_at = \(bind: now) WHERE id = \(bind: id)").run()
    }

    static func setPasswordHash(id: String, hash: String, now: Int64, _ sql: any SQLDatabase) async throws {
        try await sql.raw("UPDATE users SET password_hash = \(bind: hash), updated_at = \(bind: now) WHERE id = \(bind: id)").run()
    }

    static func setAdmin(id: String, admin: Bool, _ sql: any SQLDatabase) async throws {
        try await sql.raw("UPDATE users SET is_admin = \(bind: Int64(admin ? 1 : 0)) WHERE id = \(bind: id)").run()
    }

    static func countActive(_ sql: any SQLDatabase) async throws -> Int64 {
        try await sql.raw("SELECT COUNT(*) AS n FROM users WHERE status = 'active'").first(decodingColumn: "n", as: Int64.self) ?? 0
    }

    /// Active users whose email starts with `prefix` (LIKE wildcards in the prefix are escaped).
    static func search(emailPrefix prefix: String, limit: Int, _ sql: any SQLDatabase) async throws -> [UserRecord] {
        let escaped = prefix.replacingOccurrences(of: "\\", with: "\\\\")
            .replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
        return try await sql.raw("""
            SELECT \(unsafeRaw: columns) FROM users WHERE status = 'active' AND email LIKE \(bind: escaped + "%") ESCAPE '\\'
            ORDER BY email LIMIT \(bind: limit)
            """).rows(UserRecord.self)
    }

    /// Users soft-deleted before `cutoff`: due for the permanent purge.
    static func deletedBefore(_ cutoff: Int64, _ sql: any SQLDatabase) async throws -> [UserRecord] {
        try await sql.raw("SELECT \(unsafeRaw: columns) FROM users WHERE status = 'deleted' AND deleted_at IS NOT NULL AND deleted_at < \(bind: cutoff)").rows(UserRecord.self)
    }
}
