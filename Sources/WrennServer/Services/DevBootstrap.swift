import Foundation
import Logging
import WrennWire

/// `wrenn dev`'s first-run convenience: an active platform-admin account with a default team and an API key, written
/// to `<data>/dev.env` (mode 0600) as `WRENN_BASE_URL` / `WRENN_API_KEY`, so the SDK works right away.
///
/// Runs only when the installation has no users yet; later starts re-read the file. Never used by `wrenn serve`.
public struct DevBootstrap: Sendable {
    public static let adminEmail = "admin@wrenn.local"

    let services: ControlPlaneServices
    let logger: Logger

    public init(services: ControlPlaneServices, logger: Logger) {
        self.services = services
        self.logger = logger
    }

    var envPath: String { (services.config.dataDirectory as NSString).appendingPathComponent("dev.env") }

    /// Creates the account and key when the installation is empty; returns the path of the env file, if any.
    @discardableResult
    public func run(baseURL: String) async throws -> String? {
        let database = services.database
        let hasUsers = try await database.read { sql in
            try await sql.raw("SELECT id FROM users LIMIT 1").first() != nil
        }
        if hasUsers {
            if FileManager.default.fileExists(atPath: envPath) {
                logger.notice("dev credentials", metadata: ["file": "\(envPath)"])
                return envPath
            }
            return nil
        }
        let password = Secrets.randomHex(bytes: 12)
        let hash = try await services.accounts.hasher.hash(password)
        let now = services.clock.now().millis
        let key = "wrn_" + Secrets.randomHex(bytes: 16)
        try await database.transaction { sql in
            let user = UserRecord(id: PrefixedID.make(.user), email: Self.adminEmail, passwordHash: hash, name: "Admin", isAdmin: 1,
                                  status: UserStatus.active.rawValue, createdAt: now, updatedAt: now, deletedAt: nil)
            try await UserRepository.insert(user, sql)
            let team = try await services.teams.ensureDefaultTeam(for: user, sql)
            try await APIKeyRepository.insert(APIKeyRecord(id: PrefixedID.make(.apiKey), teamId: team.id, name: "wrenn dev",
                                                           keyHash: Secrets.sha256Hex(key), keyPrefix: String(key.prefix(10)),
                                                           createdBy: user.id, createdAt: now, lastUsed: nil), sql)
            try await services.audit.record(.init(team: team.id, actor: .system, resourceType: "user", resourceID: user.id,
                                                  action: "dev_bootstrap", scope: "admin"), sql)
        }
        let text = """
            # Written by `wrenn dev` on first start. Source it: `set -a; . \(envPath); set +a`
            WRENN_BASE_URL=\(baseURL)
            WRENN_API_KEY=\(key)
            WRENN_ADMIN_EMAIL=\(Self.adminEmail)
            WRENN_ADMIN_PASSWORD=\(password)

            """
        guard FileManager.default.createFile(atPath: envPath, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw ConfigError("cannot write \(envPath)")
        }
        logger.notice("created the dev admin account and API key", metadata: ["file": "\(envPath)", "email": "\(Self.adminEmail)"])
        return envPath
    }
}
