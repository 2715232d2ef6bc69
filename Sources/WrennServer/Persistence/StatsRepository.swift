import SQLKit

/// One sampler row: what a team reserved at `sampledAt` (the sampler's tick, rounded down to its interval).
struct StatsSampleRecord: Codable, Sendable {
    var teamId: String
    var sampledAt: Int64
    var runningCount: Int64
    var vcpusReserved: Int64
    var memoryMbReserved: Int64
}

/// What a team reserves: capsules in a reserving state, their vCPUs and memory.
struct ReservationRow: Codable, Sendable {
    var teamId: String
    var runningCount: Int64
    var vcpus: Int64
    var memoryMb: Int64
}

/// Maxima of one time bucket of samples, and the time of its last sample (for carrying values into empty buckets).
struct StatsBucketRow: Codable, Sendable {
    var bucket: Int64
    var runningCount: Int64
    var vcpus: Int64
    var memoryMb: Int64
    var lastAt: Int64
}

/// One row of `capsule_status_changes`: the capsule entered `status` at `changedAt` with that machine shape.
struct StatusChangeRecord: Codable, Sendable {
    var seq: Int64
    var capsuleId: String
    var status: String
    var vcpus: Int64
    var memoryMb: Int64
    var changedAt: Int64
}

/// A rolled-up day of `daily_usage` (`day` is `YYYY-MM-DD`, UTC).
struct DailyUsageRecord: Codable, Sendable {
    var day: String
    var cpuMinutes: Double
    var ramMbMinutes: Double
}

/// SQL for the team statistics: sampler rows, the capsules' status history, and the daily usage rollup.
enum StatsRepository {
    /// Migration 3. `capsule_status_changes` is written by triggers on `capsules`, so every status write — whichever
    /// code path makes it — is recorded with the row's `last_updated` (every status write sets it). Existing
    /// capsules get one row with their current status.
    static func schema(_ kind: DatabaseKind) -> [String] {
        let serial = kind == .postgres ? "BIGSERIAL PRIMARY KEY" : "INTEGER PRIMARY KEY AUTOINCREMENT"
        let insertChange = """
            INSERT INTO capsule_status_changes (capsule_id, team_id, status, vcpus, memory_mb, changed_at)
            VALUES (NEW.id, NEW.team_id, NEW.status, NEW.vcpus, NEW.memory_mb, NEW.last_updated)
            """
        var statements = [
            """
            CREATE TABLE capsule_stats_samples (
                team_id TEXT NOT NULL, sampled_at BIGINT NOT NULL, running_count BIGINT NOT NULL,
                vcpus_reserved BIGINT NOT NULL, memory_mb_reserved BIGINT NOT NULL, PRIMARY KEY (team_id, sampled_at))
            """,
            "CREATE INDEX capsule_stats_samples_time ON capsule_stats_samples (sampled_at)",
            // The sampler reads reserving capsules across teams every tick; stopped rows are never deleted.
            "CREATE INDEX capsules_status ON capsules (status)",
            """
            CREATE TABLE capsule_status_changes (
                seq \(serial), capsule_id TEXT NOT NULL, team_id TEXT NOT NULL, status TEXT NOT NULL,
                vcpus BIGINT NOT NULL, memory_mb BIGINT NOT NULL, changed_at BIGINT NOT NULL)
            """,
            "CREATE INDEX capsule_status_changes_team ON capsule_status_changes (team_id, changed_at)",
            "CREATE INDEX capsule_status_changes_capsule ON capsule_status_changes (capsule_id, changed_at)",
            """
            CREATE TABLE daily_usage (
                team_id TEXT NOT NULL, day TEXT NOT NULL, cpu_minutes DOUBLE PRECISION NOT NULL,
                ram_mb_minutes DOUBLE PRECISION NOT NULL, PRIMARY KEY (team_id, day))
            """,
            """
            INSERT INTO capsule_status_changes (capsule_id, team_id, status, vcpus, memory_mb, changed_at)
            SELECT id, team_id, status, vcpus, memory_mb, last_updated FROM capsules
            """,
        ]
        switch kind {
        case .sqlite:
            statements += [
                "CREATE TRIGGER capsules_status_insert AFTER INSERT ON capsules BEGIN \(insertChange); END",
                """
                CREATE TRIGGER capsules_status_update AFTER UPDATE OF status ON capsules
                WHEN OLD.status IS NOT NEW.status BEGIN \(insertChange); END
                """,
            ]
        case .postgres:
            statements += [
                "CREATE FUNCTION capsules_record_status() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \(insertChange); RETURN NEW; END $$",
                "CREATE TRIGGER capsules_status_insert AFTER INSERT ON capsules FOR EACH ROW EXECUTE FUNCTION capsules_record_status()",
                """
                CREATE TRIGGER capsules_status_update AFTER UPDATE OF status ON capsules FOR EACH ROW
                WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION capsules_record_status()
                """,
            ]
        }
        return statements
    }

    /// Whether migration 3 has been applied (the jobs start with the server, migrations run as it starts).
    static func schemaReady(_ sql: any SQLDatabase) async -> Bool {
        (try? await sql.raw("SELECT version FROM schema_migrations WHERE version = 3").first()) != nil
    }

    // MARK: Reservations and samples

    /// Per team: capsules in `statuses`, their vCPUs and memory (teams with none are absent).
    static func reservations(statuses: [String], _ sql: any SQLDatabase) async throws -> [ReservationRow] {
        try await sql.raw("""
            SELECT team_id, CAST(COUNT(*) AS BIGINT) AS running_count, CAST(COALESCE(SUM(vcpus), 0) AS BIGINT) AS vcpus,
            CAST(COALESCE(SUM(memory_mb), 0) AS BIGINT) AS memory_mb
            FROM capsules WHERE status IN (\(binds: statuses)) GROUP BY team_id
            """).rows(ReservationRow.self)
    }

    /// The same for one team (zeros when it reserves nothing).
    static func reservation(team: String, statuses: [String], _ sql: any SQLDatabase) async throws -> ReservationRow {
        try await sql.raw("""
            SELECT team_id, CAST(COUNT(*) AS BIGINT) AS running_count, CAST(COALESCE(SUM(vcpus), 0) AS BIGINT) AS vcpus,
            CAST(COALESCE(SUM(memory_mb), 0) AS BIGINT) AS memory_mb
            FROM capsules WHERE team_id = \(bind: team) AND status IN (\(binds: statuses)) GROUP BY team_id
            """).row(ReservationRow.self) ?? ReservationRow(teamId: team, runningCount: 0, vcpus: 0, memoryMb: 0)
    }

    /// Teams with a sample since `since` that reserved something (those idle now get one zero sample).
    static func teamsSampledBusy(since: Int64, _ sql: any SQLDatabase) async throws -> [String] {
        try await sql.raw("""
            SELECT DISTINCT team_id FROM capsule_stats_samples
            WHERE sampled_at >= \(bind: since) AND (running_count > 0 OR memory_mb_reserved > 0)
            """).all(decodingColumn: "team_id", as: String.self)
    }

    /// Records a sample; a second sample of the same team and tick (another replica) is ignored.
    static func insertSample(_ s: StatsSampleRecord, _ sql: any SQLDatabase) async throws {
        try await sql.raw("""
            INSERT INTO capsule_stats_samples (team_id, sampled_at, running_count, vcpus_reserved, memory_mb_reserved)
            VALUES (\(bind: s.teamId), \(bind: s.sampledAt), \(bind: s.runningCount), \(bind: s.vcpusReserved), \(bind: s.memoryMbReserved))
            ON CONFLICT (team_id, sampled_at) DO NOTHING
            """).run()
    }

    static func pruneSamples(before: Int64, _ sql: any SQLDatabase) async throws {
        try await sql.raw("DELETE FROM capsule_stats_samples WHERE sampled_at < \(bind: before)").run()
    }

    /// Maxima of the team's samples since `since` (nil without samples).
    static func peaks(team: String, since: Int64, _ sql: any SQLDatabase) async throws -> (running: Int64, vcpus: Int64, memoryMb: Int64)? {
        struct Row: Codable { var running: Int64?; var vcpus: Int64?; var memoryMb: Int64? }
        let row = try await sql.raw("""
            SELECT MAX(running_count) AS running, MAX(vcpus_reserved) AS vcpus, MAX(memory_mb_reserved) AS memory_mb
            FROM capsule_stats_samples WHERE team_id = \(bind: team) AND sampled_at >= \(bind: since)
            """).row(Row.self)
        guard let row, let running = row.running else { return nil }
        return (running, row.vcpus ?? 0, row.memoryMb ?? 0)
    }

    /// The team's samples in [`from`, `to`) grouped into buckets of `bucketMillis` (bucket = sampled_at / size).
    static func buckets(team: String, from: Int64, to: Int64, bucketMillis: Int64, _ sql: any SQLDatabase) async throws -> [StatsBucketRow] {
        try await sql.raw("""
            SELECT sampled_at / \(literal: bucketMillis) AS bucket, MAX(running_count) AS running_count,
            MAX(vcpus_reserved) AS vcpus, MAX(memory_mb_reserved) AS memory_mb, MAX(sampled_at) AS last_at
            FROM capsule_stats_samples WHERE team_id = \(bind: team) AND sampled_at >= \(bind: from) AND sampled_at < \(bind: to)
            GROUP BY sampled_at / \(literal: bucketMillis) ORDER BY bucket
            """).rows(StatsBucketRow.self)
    }

    // MARK: Status history and daily usage

    /// The team's status changes that matter for [`from`, `to`): those inside it, and each capsule's last one before it.
    static func changes(team: String, from: Int64, to: Int64, _ sql: any SQLDatabase) async throws -> [StatusChangeRecord] {
        try await sql.raw("""
            SELECT c.seq, c.capsule_id, c.status, c.vcpus, c.memory_mb, c.changed_at FROM capsule_status_changes c
            WHERE c.team_id = \(bind: team) AND c.changed_at < \(bind: to) AND (c.changed_at >= \(bind: from)
              OR c.seq = (SELECT MAX(p.seq) FROM capsule_status_changes p WHERE p.capsule_id = c.capsule_id AND p.changed_at < \(bind: from)))
            ORDER BY c.capsule_id, c.changed_at, c.seq
            """).rows(StatusChangeRecord.self)
    }

    /// Teams with any recorded status change.
    static func teamsWithChanges(_ sql: any SQLDatabase) async throws -> [String] {
        try await sql.raw("SELECT DISTINCT team_id FROM capsule_status_changes").all(decodingColumn: "team_id", as: String.self)
    }

    /// Drops history before `before` that no longer decides anything: rows superseded by a later row before the
    /// cutoff, and a capsule's last row before it when that status reserves nothing (no row = reserves nothing).
    static func pruneChanges(before: Int64, reserving: [String], _ sql: any SQLDatabase) async throws {
        try await sql.raw("""
            DELETE FROM capsule_status_changes WHERE changed_at < \(bind: before) AND (status NOT IN (\(binds: reserving))
              OR seq < (SELECT MAX(n.seq) FROM capsule_status_changes n
                        WHERE n.capsule_id = capsule_status_changes.capsule_id AND n.changed_at < \(bind: before)))
            """).run()
    }

    static func upsertDaily(team: String, _ d: DailyUsageRecord, _ sql: any SQLDatabase) async throws {
        try await sql.raw("""
            INSERT INTO daily_usage (team_id, day, cpu_minutes, ram_mb_minutes)
            VALUES (\(bind: team), \(bind: d.day), \(bind: d.cpuMinutes), \(bind: d.ramMbMinutes))
            ON CONFLICT (team_id, day) DO UPDATE SET cpu_minutes = excluded.cpu_minutes, ram_mb_minutes = excluded.ram_mb_minutes
            """).run()
    }

    /// Rolled-up days of the team between `from` and `to` (inclusive, `YYYY-MM-DD` compares as text).
    static func daily(team: String, from: String, to: String, _ sql: any SQLDatabase) async throws -> [DailyUsageRecord] {
        try await sql.raw("""
            SELECT day, cpu_minutes, ram_mb_minutes FROM daily_usage
            WHERE team_id = \(bind: team) AND day >= \(bind: from) AND day <= \(bind: to) ORDER BY day
            """).rows(DailyUsageRecord.self)
    }
}
