import SQLKit

/// A row of `capsules`.
struct CapsuleRecord: Codable, Sendable {
    var id: String
    var teamId: String
    var hostId: String?
    var template: String
    var status: String
    var vcpus: Int64
    var memoryMb: Int64
    var diskSizeMb: Int64
    var timeoutSec: Int64
    var createdAt: Int64
    var startedAt: Int64?
    var lastActiveAt: Int64?
    var lastUpdated: Int64
    var metadata: String
    var error: String?
}

/// SQL for `capsules`. Rows are never deleted: a destroyed capsule stays readable as `stopped`.
enum CapsuleRepository {
    static let columns = """
        id, team_id, host_id, template, status, vcpus, memory_mb, disk_size_mb, timeout_sec, created_at, started_at,
        last_active_at, last_updated, metadata, error
        """

    static func insert(_ c: CapsuleRecord, _ sql: any SQLDatabase) async throws {
        try await sql.raw("""
            INSERT INTO capsules (\(unsafeRaw: columns)) VALUES (\(bind: c.id), \(bind: c.teamId), \(bind: c.hostId),
            \(bind: c.template), \(bind: c.status), \(bind: c.vcpus), \(bind: c.memoryMb), \(bind: c.diskSizeMb), \(bind: c.timeoutSec),
            \(bind: c.createdAt), \(bind: c.startedAt), \(bind: c.lastActiveAt), \(bind: c.lastUpdated), \(bind: c.metadata), \(bind: c.error))
            """).run()
    }

    /// The capsule if it belongs to `team` (another team's id reads as absent).
    static func find(id: String, team: String, _ sql: any SQLDatabase) async throws -> CapsuleRecord? {
        try await sql.raw("SELECT \(unsafeRaw: columns) FROM capsules WHERE id = \(bind: id) AND team_id = \(bind: team)").row(CapsuleRecord.self)
    }

    static func find(id: String, _ sql: any SQLDatabase) async throws -> CapsuleRecord? {
        try await sql.raw("SELECT \(unsafeRaw: columns) FROM capsules WHERE id = \(bind: id)").row(CapsuleRecord.self)
    }

    /// The team's capsules that are not stopped or errored, newest first.
    static func listLive(team: String, _ sql: any SQLDatabase) async throws -> [CapsuleRecord] {
        try await sql.raw("""
            SELECT \(unsafeRaw: columns) FROM capsules WHERE team_id = \(bind: team) AND status NOT IN ('stopped', 'error')
            ORDER BY created_at DESC, id DESC
            """).rows(CapsuleRecord.self)
    }

    /// Capsules in any of `statuses`, across teams (for reconciliation at start).
    static func list(statuses: [String], _ sql: any SQLDatabase) async throws -> [CapsuleRecord] {
        try await sql.raw("SELECT \(unsafeRaw: columns) FROM capsules WHERE status IN (\(binds: statuses))").rows(CapsuleRecord.self)
    }

    /// Moves a capsule from one of `from` to `to`; returns false when its status was not one of `from`
    /// (a concurrent request won), so transitions are compare-and-set.
    static func transition(id: String, from: [String], to: String, at: Int64, _ sql: any SQLDatabase) async throws -> Bool {
        guard let row = try await sql.raw("SELECT status FROM capsules WHERE id = \(bind: id)").first(decodingColumn: "status", as: String.self),
              from.contains(row) else { return false }
        try await sql.raw("UPDATE capsules SET status = \(bind: to), last_updated = \(bind: at) WHERE id = \(bind: id) AND status = \(bind: row)").run()
        return true
    }

    static func markRunning(id: String, metadata: String, at: Int64, firstStart: Bool, _ sql: any SQLDatabase) async throws {
        if firstStart {
            try await sql.raw("""
                UPDATE capsules SET status = 'running', metadata = \(bind: metadata), started_at = \(bind: at), last_active_at = \(bind: at),
                last_updated = \(bind: at), error = NULL WHERE id = \(bind: id)
                """).run()
        } else {
            try await sql.raw("""
                UPDATE capsules SET status = 'running', metadata = \(bind: metadata), last_active_at = \(bind: at), last_updated = \(bind: at),
                error = NULL WHERE id = \(bind: id)
                """).run()
        }
    }

    static func setStatus(id: String, status: String, error: String?, at: Int64, _ sql: any SQLDatabase) async throws {
        try await sql.raw("UPDATE capsules SET status = \(bind: status), error = \(bind: error), last_updated = \(bind: at) WHERE id = \(bind: id)").run()
    }

    static func touch(id: String, at: Int64, _ sql: any SQLDatabase) async throws {
        try await sql.raw("UPDATE capsules SET last_active_at = \(bind: at) WHERE id = \(bind: id)").run()
    }
}
