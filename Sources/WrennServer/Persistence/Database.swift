import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PostgresKit
import SQLKit
import SQLiteKit
import ServiceLifecycle

/// Which SQL engine backs the control plane.
public enum DatabaseKind: String, Sendable {
    case sqlite
    case postgres
}

/// The control plane's one query layer over SQLite or PostgreSQL.
///
/// Repositories receive an `any SQLDatabase` inside `read` or `transaction` and write portable SQL through SQLKit
/// (binds are rendered as `?` or `$n` by the dialect). SQLite runs on one connection guarded by an async lock, so a
/// transaction is never interleaved with another task's statements; PostgreSQL leases a pooled connection.
/// The store is a `Service`: it must be run (it owns the PostgreSQL pool's background work).
public final class Database: Service, Sendable {
    public let kind: DatabaseKind
    private let backend: Backend
    private let logger: Logger

    private enum Backend: Sendable {
        case sqlite(SQLiteConnection, AsyncLock)
        case postgres(PostgresClient)
    }

    /// Opens the database named by `url`: `postgres://…`/`postgresql://…` for PostgreSQL, `sqlite://PATH`, a plain
    /// file path, or `:memory:` for SQLite.
    public static func open(url: String, logger: Logger) async throws -> Database {
        if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            let config = try SQLPostgresConfiguration(url: url)
            var clientConfig = PostgresClient.Configuration(
                host: config.coreConfiguration.host ?? "127.0.0.1",
                port: config.coreConfiguration.port ?? 5432,
                username: config.coreConfiguration.username,
                password: config.coreConfiguration.password,
                database: config.coreConfiguration.database,
                tls: .disable
            )
            clientConfig.options.minimumConnections = 0
            clientConfig.options.maximumConnections = 16
            let client = PostgresClient(configuration: clientConfig, backgroundLogger: logger)
            return Database(kind: .postgres, backend: .postgres(client), logger: logger)
        }
        var path = url
        if path.hasPrefix("sqlite://") { path.removeFirst("sqlite://".count) }
        let storage: SQLiteConnection.Storage = path == ":memory:" ? .memory : .file(path: path)
        let connection = try await SQLiteConnection.open(storage: storage, logger: logger)
        let db = Database(kind: .sqlite, backend: .sqlite(connection, AsyncLock()), logger: logger)
        let isFile = path != ":memory:"
        try await db.read { sql in
            try await sql.raw("PRAGMA foreign_keys = ON").run()
            if isFile { try await sql.raw("PRAGMA journal_mode = WAL").run() }
            try await sql.raw("PRAGMA busy_timeout = 5000").run()
        }
        return db
    }

    private init(kind: DatabaseKind, backend: Backend, logger: Logger) {
        self.kind = kind
        self.backend = backend
        self.logger = logger
    }

    /// Runs the PostgreSQL pool until graceful shutdown; for SQLite waits for shutdown, then closes the file.
    public func run() async throws {
        switch backend {
        case .postgres(let client):
            await cancelWhenGracefulShutdown { await client.run() }
        case .sqlite(let connection, _):
            try? await gracefulShutdown()
            // The future-based close is not cancellation-aware: the file is closed even when the group was cancelled.
            let closed: EventLoopFuture<Void> = connection.close()
            try await closed.get()
        }
    }

    /// Runs `body` with a database handle outside an explicit transaction (each statement commits on its own).
    public func read<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        switch backend {
        case .sqlite(let connection, let lock):
            return try await lock.withLock { try await body(connection.sql(queryLogLevel: .trace)) }
        case .postgres(let client):
            return try await client.withConnection { connection in
                try await body(connection.sql(queryLogLevel: .trace))
            }
        }
    }

    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws.
    public func transaction<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        switch backend {
        case .sqlite(let connection, let lock):
            // IMMEDIATE takes the write lock up front, so two writers never deadlock upgrading read locks.
            return try await lock.withLock { try await Self.inTransaction(connection.sql(queryLogLevel: .trace), begin: "BEGIN IMMEDIATE", body) }
        case .postgres(let client):
            return try await client.withConnection { connection in
                try await Self.inTransaction(connection.sql(queryLogLevel: .trace), begin: "BEGIN", body)
            }
        }
    }

    private static func inTransaction<T: Sendable>(_ sql: any SQLDatabase, begin: String,
                                                   _ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await sql.raw(SQLQueryString(begin)).run()
        do {
            let result = try await body(sql)
            try await sql.raw("COMMIT").run()
            return result
        } catch {
            try? await sql.raw("ROLLBACK").run()
            throw error
        }
    }
}

/// A FIFO async mutex: one holder at a time, waiters resumed in order. Cancellation does not skip the queue.
final class AsyncLock: Sendable {
    private struct State {
        var locked = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = NIOLockedValueBox(State())

    func withLock<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        await acquire()
        defer { release() }
        return try await body()
    }

    private func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLockedValue { s -> Bool in
                if s.locked { s.waiters.append(continuation); return false }
                s.locked = true
                return true
            }
            if resumeNow { continuation.resume() }
        }
    }

    private func release() {
        let next = state.withLockedValue { s -> CheckedContinuation<Void, Never>? in
            if s.waiters.isEmpty { s.locked = false; return nil }
            return s.waiters.removeFirst()
        }
        next?.resume()
    }
}
