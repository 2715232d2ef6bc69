import SQLKit

/// A row of `hosts`. `tokenGeneration` is the `gen` claim every valid host JWT must carry: bumping it revokes all
/// JWTs issued to the host (done when a rotated refresh token is reused).
struct HostRecord: Codable, Sendable {
    var id: String
    var type: String
    var teamId: String?
    var provider: String?
    var availabilityZone: String?
    var arch: String?
    var cpuCores: Int64?
    var memoryMb: Int64?
    var diskGb: Int64?
    var address: String?
    var status: String
    var lastHeartbeatAt: Int64?
    var tokenGeneration: Int64
    var createdBy: String?
    var createdAt: Int64
    var updatedAt: Int64
}

/// A row of `host_tokens`: a one-time registration token, stored as its SHA-256.
struct HostRegistrationTokenRecord: Codable, Sendable {
    var id: String
    var hostId: String
    var tokenHash: String
    var createdBy: String?
    var createdAt: Int64
    var expiresAt: Int64
    var usedAt: Int64?
}

/// A row of `host_refresh_tokens`. Every token descends from one registration: they share a `family_id`, so a
/// reused (already rotated) token can revoke its whole chain.
struct HostRefreshTokenRecord: Codable, Sendable {
    var id: String
    var hostId: String
    var familyId: String
    var tokenHash: String
    var createdAt: Int64
    var expiresAt: Int64
    var revokedAt: Int64?
}

/// Capsule load of one host, per status group, for the scheduler.
struct HostLoadRow: Codable, Sendable {
    var hostId: String?
    var status: String
    var vcpus: Int64?
    var memoryMb: Int64?
    var diskSizeMb: Int64?
}

/// SQL for `hosts`, `host_tokens`, `host_refresh_tokens` and `host_tags` (migration 4).
enum HostRepository {
    static let schema: @Sendable (DatabaseKind) -> [String] = { _ in
        [
            """
            CREATE TABLE hosts (
                id TEXT PRIMARY KEY, type TEXT NOT NULL, team_id TEXT REFERENCES teams(id), provider TEXT,
                availability_zone TEXT, arch TEXT, cpu_cores BIGINT, memory_mb BIGINT, disk_gb BIGINT, address TEXT,
                status TEXT NOT NULL, last_heartbeat_at BIGINT, token_generation BIGINT NOT NULL DEFAULT 0, created_by TEXT,
                created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
            """,
            "CREATE INDEX hosts_team ON hosts (team_id)",
            """
            CREATE TABLE host_tokens (
                id TEXT PRIMARY KEY, host_id TEXT NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
                token_hash TEXT NOT NULL UNIQUE, created_by TEXT, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL,
                used_at BIGINT)
            """,
            """
            CREATE TABLE host_refresh_tokens (
                id TEXT PRIMARY KEY, host_id TEXT NOT NULL REFERENCES hosts(id) ON DELETE CASCADE, family_id TEXT NOT NULL,
                token_hash TEXT NOT NULL UNIQUE, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, revoked_at BIGINT)
            """,
            "CREATE INDEX host_refresh_tokens_family ON host_refresh_tokens (family_id)",
            """
            CREATE TABLE host_tags (
                host_id TEXT NOT NULL REFERENCES hosts(id) ON DELETE CASCADE, tag TEXT NOT NULL, PRIMARY KEY (host_id, tag))
            """,
            "CREATE INDEX host_tags_tag ON host_tags (tag)",
        ]
    }

    static let columns = """
        id, type, team_id, provider, availability_zone, arch, cpu_cores, memory_mb, disk_gb, address, status,
        last_heartbeat_at, token_generation, created_by, created_at, updated_at
        """

    // MARK: hosts

    static func insert(_ h: HostRecord, _ sql: any SQLDatabase) async throws {
        try await sql.raw("""
            INSERT INTO hosts (\(unsafeRaw: columns)) VALUES (\(bind: h.id), \(bind: h.type), \(bind: h.teamId), \(bind: h.provider),
            \(bind: h.availabilityZone), \(bind: h.arch), \(bind: h.cpuCores), \(bind: h.memoryMb), \(bind: h.diskGb), \(bind: h.address),
            \(bind: h.status), \(bind: h.lastHeartbeatAt), \(bind: h.tokenGeneration), \(bind: h.createdBy), \(bind: h.createdAt),
            \(bind: h.updatedAt))
            """).run()
    }

    static func find(id: String, _ sql: any SQLDatabase) async throws -> HostRecord? {
        try await sql.raw("SELECT \(unsafeRaw: columns) FROM hosts WHERE id = \(bind: id)").row(HostRecord.self)
    }

    /// Every host (admins), or the BYOC hosts of `team`.
    static func list(team: String?, _ sql: any SQLDatabase) async throws -> [HostRecord] {
        if let team {
            return try await sql.raw("""
                SELECT \(unsafeRaw: columns) FROM hosts WHERE type = 'byoc' AND team_id = \(bind: team) ORDER BY created_at, id
                """).rows(HostRecord.self)
        }
        return try await sql.raw("SELECT \(unsafeRaw: columns) FROM hosts ORDER BY created_at, id").rows(HostRecord.self)
    }

    static func list(statuses: [String], _ sql: any SQLDatabase) async throws -> [HostRecord] {
        try await sql.raw("SELECT \(unsafeRaw: columns) FROM hosts WHERE status IN (\(binds: statuses)) ORDER BY id").rows(HostRecord.self)
    }

    /// Registration: machine facts, address, `online`, first heartbeat now.
    static func markRegistered(id: String, arch: String?, cpuCores: Int64?, memoryMb: Int64?, diskGb: Int64?, address: String,
                               at: Int64, _ sql: any SQLDatabase) async throws {
        try await sql.raw("""
            UPDATE hosts SET arch = \(bind: arch), cpu_cores = \(bind: cpuCores), memory_mb = \(bind: memoryMb), disk_gb = \(bind: diskGb),
            address = \(bind: address), status = 'online', last_heartbeat_at = \(bind: at), updated_at = \(bind: at) WHERE id = \(bind: id)
            """).run()
    }

    static func heartbeat(id: String, at: Int64, _ sql: any SQLDatabase) async throws {
        try await sql.raw("UPDATE hosts SET last_heartbeat_at = \(bind: at) WHERE id = \(bind: id)").run()
    }

    static func setStatus(id: String, status: String, at: Int64, _ sql: any SQLDatabase) async throws {
        try await sql.raw("UPDATE hosts SET status = \(bind: status), updated_at = \(bind: at) WHERE id = \(bind: id)").run()
    }

    static func bumpTokenGeneration(id: String, at: Int64, _ sql: any SQLDatabase) async throws {
        try await sql.raw("""
            UPDATE hosts SET token_generation = token_generation + 1, updated_at = \(bind: at) WHERE id = \(bind: id)
            """).run()
    }

    static func delete(id: String, _ sql: any SQLDatabase) async throws {
        try await sql.raw("DELETE FROM host_tags WHERE host_id = \(bind: id)").run()
        try await sql.raw("DELETE FROM host_refresh_tokens WHERE host_id = \(bind: id)").run()
        try await sql.raw("DELETE FROM host_tokens WHERE host_id = \(bind: id)").run()
        try await sql.raw("DELETE FROM hosts WHERE id = \(bind: id)").run()
    }

    /// Capsule load per host and status, of every host or only `host` (only capsules that hold resources; PostgreSQL's SUM of BIGINT is NUMERIC, hence the casts).
    static func load(_ sql: any SQLDatabase, host: String? = nil) async throws -> [HostLoadRow] {
        let only: SQLQueryString = host.map { "AND host_id = \(bind: $0) " } ?? ""
        return try await sql.raw("""
            SELECT host_id, status, CAST(SUM(vcpus) AS BIGINT) AS vcpus, CAST(SUM(memory_mb) AS BIGINT) AS memory_mb,
                   CAST(SUM(disk_size_mb) AS BIGINT) AS disk_size_mb
            FROM capsules WHERE status NOT IN ('stopped', 'error') \(only)GROUP BY host_id, status
            """).rows(HostLoadRow.self)
    }

    /// Inside a transaction: locks the host's row until the transaction ends (PostgreSQL `FOR UPDATE`; SQLite's
    /// `BEGIN IMMEDIATE` already serializes writers) and tells whether `demand` still fits beside the capsules it
    /// holds now. Placing a capsule re-checks here before its row is inserted, so concurrent creates — in this
    /// process or in other control planes on the same database — cannot overbook a host.
    static func stillFits(host id: String, demand: Scheduler.Demand, _ sql: any SQLDatabase) async throws -> Bool {
        let lock: SQLQueryString = sql.dialect.name == "postgresql" ? " FOR UPDATE" : ""
        guard let host = try await sql.raw("SELECT \(unsafeRaw: columns) FROM hosts WHERE id = \(bind: id)\(lock)").row(HostRecord.self),
              host.status == "online" else { return false }
        let rows = try await load(sql, host: id)
        return Scheduler.headroom(host, used: Scheduler.usage(rows)[id] ?? Scheduler.Usage(), demand: demand) != nil
    }

    /// Ids of the host's capsules that are not stopped or errored.
    static func activeCapsuleIDs(host: String, _ sql: any SQLDatabase) async throws -> [String] {
        try await sql.raw("""
            SELECT id FROM capsules WHERE host_id = \(bind: host) AND status NOT IN ('stopped', 'error') ORDER BY created_at, id
            """).all(decodingColumn: "id", as: String.self)
    }

    // MARK: registration tokens

    static func insertRegistrationToken(_ t: HostRegistrationTokenRecord, _ sql: any SQLDatabase) async throws {
        try await sql.raw("""
            INSERT INTO host_tokens (id, host_id, token_hash, created_by, created_at, expires_at, used_at)
            VALUES (\(bind: t.id), \(bind: t.hostId), \(bind: t.tokenHash), \(bind: t.createdBy), \(bind: t.createdAt),
            \(bind: t.expiresAt), \(bind: t.usedAt))
            """).run()
    }

    static func registrationToken(hash: String, _ sql: any SQLDatabase) async throws -> HostRegistrationTokenRecord? {
        try await sql.raw("""
            SELECT id, host_id, token_hash, created_by, created_at, expires_at, used_at FROM host_tokens WHERE token_hash = \(bind: hash)
            """).row(HostRegistrationTokenRecord.self)
    }

    /// Marks the token used; false when another request used it first.
    static func useRegistrationToken(id: String, at: Int64, _ sql: any SQLDatabase) async throws -> Bool {
        guard try await sql.raw("SELECT id FROM host_tokens WHERE id = \(bind: id) AND used_at IS NULL").first() != nil else { return false }
        try await sql.raw("UPDATE host_tokens SET used_at = \(bind: at) WHERE id = \(bind: id) AND used_at IS NULL").run()
        return true
    }

    /// Voids every unused registration token of the host (a regenerated token replaces them).
    static func voidRegistrationTokens(host: String, at: Int64, _ sql: any SQLDatabase) async throws {
        try await sql.raw("UPDATE host_tokens SET used_at = \(bind: at) WHERE host_id = \(bind: host) AND used_at IS NULL").run()
    }

    // MARK: refresh tokens

    static func insertRefreshToken(_ t: HostRefreshTokenRecord, _ sql: any SQLDatabase) async throws {
        try await sql.raw("""
            INSERT INTO host_refresh_tokens (id, host_id, family_id, token_hash, created_at, expires_at, revoked_at)
            VALUES (\(bind: t.id), \(bind: t.hostId), \(bind: t.familyId), \(bind: t.tokenHash), \(bind: t.createdAt),
            \(bind: t.expiresAt), \(bind: t.revokedAt))
            """).run()
    }

    static func refreshToken(hash: String, _ sql: any SQLDatabase) async throws -> HostRefreshTokenRecord? {
        try await sql.raw("""
            SELECT id, host_id, family_id, token_hash, created_at, expires_at, revoked_at FROM host_refresh_tokens
            WHERE token_hash = \(bind: hash)
            """).row(HostRefreshTokenRecord.self)
    }

    /// Revokes one token; false when it was already revoked (a concurrent refresh won).
    static func revokeRefreshToken(id: String, at: Int64, _ sql: any SQLDatabase) async throws -> Bool {
        guard try await sql.raw("SELECT id FROM host_refresh_tokens WHERE id = \(bind: id) AND revoked_at IS NULL").first() != nil else {
            return false
        }
        try await sql.raw("UPDATE host_refresh_tokens SET revoked_at = \(bind: at) WHERE id = \(bind: id) AND revoked_at IS NULL").run()
        return true
    }

    static func revokeRefreshFamily(_ family: String, at: Int64, _ sql: any SQLDatabase) async throws {
        try await sql.raw("""
            UPDATE host_refresh_tokens SET revoked_at = \(bind: at) WHERE family_id = \(bind: family) AND revoked_at IS NULL
            """).run()
    }

    // MARK: tags

    static func tags(host: String, _ sql: any SQLDatabase) async throws -> [String] {
        try await sql.raw("SELECT tag FROM host_tags WHERE host_id = \(bind: host) ORDER BY tag").all(decodingColumn: "tag", as: String.self)
    }

    static func addTag(host: String, tag: String, _ sql: any SQLDatabase) async throws {
        guard try await sql.raw("SELECT tag FROM host_tags WHERE host_id = \(bind: host) AND tag = \(bind: tag)").first() == nil else { return }
        try await sql.raw("INSERT INTO host_tags (host_id, tag) VALUES (\(bind: host), \(bind: tag))").run()
    }

    static func removeTag(host: String, tag: String, _ sql: any SQLDatabase) async throws {
        try await sql.raw("DELETE FROM host_tags WHERE host_id = \(bind: host) AND tag = \(bind: tag)").run()
    }
}
