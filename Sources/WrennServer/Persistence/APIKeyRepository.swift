import SQLKit

/// SQL for `api_keys` (only the SHA-256 of a key is stored).
enum APIKeyRepository {
    static let columns = "id, team_id, name, key_hash, key_prefix, created_by, created_at, last_used"

    static func insert(_ k: APIKeyRecord, _ sql: any SQLDatabase) async throws {
        try await sql.raw("""
            INSERT INTO api_keys (\(unsafeRaw: columns)) VALUES (\(bind: k.id), \(bind: k.teamId), \(bind: k.name),
            \(bind: k.keyHash), \(bind: k.keyPrefix), \(bind: k.createdBy), \(bind: k.createdAt), \(bind: k.lastUsed))
            """).run()
    }

    static func find(hash: String, _ sql: any SQLDatabase) async throws -> APIKeyRecord? {
        try await sql.raw("SELECT \(unsafeRaw: columns) FROM api_keys WHERE key_hash = \(bind: hash)").row(APIKeyRecord.self)
    }

    static func list(team: String, _ sql: any SQLDatabase) async throws -> [APIKeyRecord] {
        try await sql.raw("SELECT \(unsafeRaw: columns) FROM api_keys WHERE team_id = \(bind: team) ORDER BY created_at DESC, id").rows(APIKeyRecord.self)
    }

    static func find(id: String, team: String, _ sql: any SQLDatabase) async throws -> APIKeyRecord? {
        try await sql.raw("SELECT \(unsafeRaw: columns) FROM api_keys WHERE id = \(bind: id) AND team_id = \(bind: team)").row(APIKeyRecord.self)
    }

    static func delete(id: String, _ sql: any SQLDatabase) async throws {
        try await sql.raw("DELETE FROM api_keys WHERE id = \(bind: id)").run()
    }

    static func deleteAll(team: String, _ sql: any SQLDatabase) async throws {
        try await sql.raw("DELETE FROM api_keys WHERE team_id = \(bind: team)").run()
    }

    static func touch(id: String, at: Int64, _ sql: any SQLDatabase) async throws {
        try await sql.raw("UPDATE api_keys SET last_used = \(bind: at) WHERE id = \(bind: id)").run()
    }
}
