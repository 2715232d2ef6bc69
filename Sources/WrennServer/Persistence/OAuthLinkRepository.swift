import SQLKit

/// SQL for `oauth_links`: which provider identities log in as which user.
enum OAuthLinkRepository {
    struct Link: Codable, Sendable {
        var provider: String
        var providerId: String
        var userId: String
        var email: String
        var createdAt: Int64
    }

    static func find(provider: String, providerID: String, _ sql: any SQLDatabase) async throws -> Link? {
        try await sql.raw("""
            SELECT provider, provider_id, user_id, email, created_at FROM oauth_links
            WHERE provider = \(bind: provider) AND provider_id = \(bind: providerID)
            """).row(Link.self)
    }

    static func links(user: String, _ sql: any SQLDatabase) async throws -> [Link] {
        try await sql.raw("SELECT provider, provider_id, user_id, email, created_at FROM oauth_links WHERE user_id = \(bind: user) ORDER BY provider").rows(Link.self)
    }

    static func insert(_ l: Link, _ sql: any SQLDatabase) async throws {
        try await sql.raw("""
            INSERT INTO oauth_links (provider, provider_id, user_id, email, created_at)
            VALUES (\(bind: l.provider), \(bind: l.providerId), \(bind: l.userId), \(bind: l.email), \(bind: l.createdAt))
            """).run()
    }

    static func delete(user: String, provider: String, _ sql: any SQLDatabase) async throws {
        try await sql.raw("DELETE FROM oauth_links WHERE user_id = \(bind: user) AND provider = \(bind: provider)").run()
    }
}
