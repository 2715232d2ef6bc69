import Foundation
import Logging
import PostgresNIO

/// The databases the persistence and API tests run against: SQLite always; PostgreSQL when
/// `WRENN_TEST_POSTGRES_URL` names a server (the README's test command starts one and sets it).
enum TestBackend: String, CaseIterable, Sendable {
    case sqlite
    case postgres

    /// The backends available in this run.
    static var available: [TestBackend] {
        postgresAdminURL == nil ? [.sqlite] : [.sqlite, .postgres]
    }

    static var postgresAdminURL: String? {
        let url = ProcessInfo.processInfo.environment["WRENN_TEST_POSTGRES_URL"]
        return url?.isEmpty == false ? url : nil
    }

    /// A fresh, empty database for one test, and a function that removes it afterwards.
    func makeDatabase() async throws -> (url: String, drop: @Sendable () async -> Void) {
        switch self {
        case .sqlite:
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wrenn-test-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            return ("sqlite://" + dir.appendingPathComponent("wrenn.db").path, { try? FileManager.default.removeItem(at: dir) })
        case .postgres:
            guard let admin = Self.postgresAdminURL else { throw TestBackendError("WRENN_TEST_POSTGRES_URL is not set") }
            guard var components = URLComponents(string: admin), components.host != nil else {
                throw TestBackendError("WRENN_TEST_POSTGRES_URL is not a postgres URL: \(admin.debugDescription)")
            }
            let name = "wrenn_t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
            try await Self.adminExecute(admin, "CREATE DATABASE \(name)")
            components.path = "/" + name
            guard let url = components.string else { throw TestBackendError("bad postgres URL") }
            return (url, { try? await Self.adminExecute(admin, "DROP DATABASE IF EXISTS \(name) WITH (FORCE)") })
        }
    }

    /// Runs one statement on the admin database over a short-lived connection.
    static func adminExecute(_ url: String, _ statement: String) async throws {
        guard let c = URLComponents(string: url), let host = c.host else { throw TestBackendError("bad postgres URL") }
        let config = PostgresConnection.Configuration(host: host, port: c.port ?? 5432, username: c.user ?? "postgres",
                                                      password: c.password, database: String(c.path.dropFirst()), tls: .disable)
        let connection = try await PostgresConnection.connect(configuration: config, id: 1, logger: Logger(label: "wrenn.test.pg"))
        defer { Task { try? await connection.close() } }
        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: Logger(label: "wrenn.test.pg"))
    }
}


struct TestBackendError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
