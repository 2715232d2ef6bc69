import Foundation
import Logging
import SQLKit

/// The control plane's schema, as an ordered list of migrations applied at start on SQLite and PostgreSQL alike.
///
/// Portable SQL only: ids are the API's prefixed text ids, times are BIGINT milliseconds since 1970 (UTC), flags are
/// BIGINT 0/1, JSON is TEXT. A migration is never edited once released; add a new one instead.
public enum Migrations {
    struct Migration: Sendable {
        let version: Int
        let name: String
        let statements: @Sendable (DatabaseKind) -> [String]
    }

    static let platformTeamID = "team-0000000000000000000000000"

    static let all: [Migration] = [
        Migration(version: 1, name: "accounts") { _ in
            [
                """
                CREATE TABLE teams (
                    id TEXT PRIMARY KEY, name TEXT NOT NULL, slug TEXT NOT NULL UNIQUE,
                    is_byoc BIGINT NOT NULL DEFAULT 0, created_at BIGINT NOT NULL, deleted_at BIGINT)
                """,
                """
                CREATE TABLE users (
                    id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, password_hash TEXT, name TEXT NOT NULL DEFAULT '',
                    is_admin BIGINT NOT NULL DEFAULT 0, status TEXT NOT NULL, created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL, deleted_at BIGINT)
                """,
                """
                CREATE TABLE team_members (
                    team_id TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
                    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    role TEXT NOT NULL, is_default BIGINT NOT NULL DEFAULT 0, joined_at BIGINT NOT NULL,
                    PRIMARY KEY (team_id, user_id))
                """,
                "CREATE INDEX team_members_user ON team_members (user_id)",
                """
                CREATE TABLE sessions (
                    id TEXT PRIMARY KEY, sid_hash TEXT NOT NULL UNIQUE, csrf_hash TEXT NOT NULL,
                    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE, team_id TEXT NOT NULL,
                    user_agent TEXT NOT NULL DEFAULT '', ip_address TEXT NOT NULL DEFAULT '',
                    created_at BIGINT NOT NULL, last_seen_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, revoked_at BIGINT)
                """,
                "CREATE INDEX sessions_user ON sessions (user_id)",
                """
                CREATE TABLE api_keys (
                    id TEXT PRIMARY KEY, team_id TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE, name TEXT NOT NULL,
                    key_hash TEXT NOT NULL UNIQUE, key_prefix TEXT NOT NULL, created_by TEXT REFERENCES users(id) ON DELETE SET NULL,
                    created_at BIGINT NOT NULL, last_used BIGINT)
                """,
                "CREATE INDEX api_keys_team ON api_keys (team_id)",
                """
                CREATE TABLE user_tokens (
                    token_hash TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    purpose TEXT NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, used_at BIGINT)
                """,
                """
                CREATE TABLE oauth_links (
                    provider TEXT NOT NULL, provider_id TEXT NOT NULL,
                    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE, email TEXT NOT NULL DEFAULT '',
                    created_at BIGINT NOT NULL, PRIMARY KEY (provider, provider_id))
                """,
                "CREATE INDEX oauth_links_user ON oauth_links (user_id)",
                """
                CREATE TABLE audit_logs (
                    id TEXT PRIMARY KEY, team_id TEXT, actor_type TEXT NOT NULL, actor_id TEXT, actor_name TEXT NOT NULL,
                    resource_type TEXT NOT NULL, resource_id TEXT, action TEXT NOT NULL, scope TEXT NOT NULL,
                    status TEXT NOT NULL, metadata TEXT NOT NULL DEFAULT '{}', created_at BIGINT NOT NULL)
                """,
                "CREATE INDEX audit_logs_team_time ON audit_logs (team_id, created_at, id)",
                """
                CREATE TABLE mail_outbox (
                    id TEXT PRIMARY KEY, to_address TEXT NOT NULL, subject TEXT NOT NULL, body TEXT NOT NULL,
                    status TEXT NOT NULL, error TEXT, created_at BIGINT NOT NULL)
                """,
                "INSERT INTO teams (id, name, slug, is_byoc, created_at) VALUES ('\(platformTeamID)', 'Platform', 'platform', 0, 0)",
            ]
        },
        Migration(version: 2, name: "capsules") { kind in
            let serial = kind == .postgres ? "BIGSERIAL PRIMARY KEY" : "INTEGER PRIMARY KEY AUTOINCREMENT"
            return [
                """
                CREATE TABLE capsules (
                    id TEXT PRIMARY KEY, team_id TEXT NOT NULL REFERENCES teams(id), host_id TEXT, template TEXT NOT NULL,
                    status TEXT NOT NULL, vcpus BIGINT NOT NULL, memory_mb BIGINT NOT NULL, disk_size_mb BIGINT NOT NULL,
                    timeout_sec BIGINT NOT NULL, created_at BIGINT NOT NULL, started_at BIGINT, last_active_at BIGINT,
                    last_updated BIGINT NOT NULL, metadata TEXT NOT NULL DEFAULT '{}', error TEXT)
                """,
                "CREATE INDEX capsules_team_status ON capsules (team_id, status)",
                "CREATE INDEX capsules_host_status ON capsules (host_id, status)",
                """
                CREATE TABLE templates (
                    team_id TEXT NOT NULL, name TEXT NOT NULL, type TEXT NOT NULL, vcpus BIGINT, memory_mb BIGINT,
                    size_bytes BIGINT NOT NULL DEFAULT 0, host_id TEXT, created_at BIGINT NOT NULL, metadata TEXT NOT NULL DEFAULT '{}',
                    PRIMARY KEY (team_id, name))
                """,
                "INSERT INTO templates (team_id, name, type, vcpus, memory_mb, size_bytes, created_at) VALUES ('\(platformTeamID)', 'minimal', 'base', 1, 512, 0, 0)",
                """
                CREATE TABLE events (
                    seq \(serial), team_id TEXT NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL, created_at BIGINT NOT NULL)
                """,
                "CREATE INDEX events_team_seq ON events (team_id, seq)",
            ]
        },
        Migration(version: 3, name: "capsule_stats", statements: StatsRepository.schema),
        Migration(version: 4, name: "hosts", statements: HostRepository.schema),
        Migration(version: 5, name: "channels", statements: ChannelRepository.schema),
        Migration(version: 7, name: "template_builds", statements: BuildRepository.schema),
    ]

    /// Applies every migration not yet recorded in `schema_migrations`, each in its own transaction.
    public static func apply(to database: Database, logger: Logger) async throws {
        try await database.read { sql in
            try await sql.raw("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)").run()
        }
        let kind = database.kind
        for migration in all {
            let applied = try await database.transaction { sql -> Bool in
                let done = try await sql.raw("SELECT version FROM schema_migrations WHERE version = \(bind: migration.version)").first()
                if done != nil { return false }
                for statement in migration.statements(kind) {
                    try await sql.raw(SQLQueryString(statement)).run()
                }
                let now = Int64(Date().timeIntervalSince1970 * 1000)
                try await sql.raw("INSERT INTO schema_migrations (version, name, applied_at) VALUES (\(bind: migration.version), \(bind: migration.name), \(bind: now))").run()
                return true
            }
            if applied { logger.info("applied migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"]) }
        }
    }
}
