import SQLKit

/// SQL for `user_tokens`: single-use activation and password-reset tokens, stored as SHA-256.
enum UserTokenRepository {
    enum Purpose: String { case activation, passwordReset = "password_reset" }

    static func insert(hash: String, user: String, purpose: Purpose, now: Int64, expires: Int64, _ sql: any SQLDatabase) async throws {
        try await sql.raw("""
            INSERT INTO user_tokens (token_hash, user_id, purpose, created_at, expires_at, used_at)
            VALUES (\(bind: hash), \(bind: user), \(bind: purpose.rawValue), \(bind: now), \(bind: expires), NULL)
            """).run()
    }

    /// Marks the token used and returns it, only if it exists, has `purpose`, is unused and unexpired.
    /// The conditional UPDATE makes concurrent redemptions of one token succeed at most once.
    static func consume(hash: String, purpose: Purpose, now: Int64, _ sql: any SQLDatabase) async throws -> UserTokenRecord? {
        guard let token = try await sql.raw("""
            SELECT token_hash, user_id, purpose, created_at, expires_at, used_at FROM user_tokens
            WHERE token_hash = \(bind: hash) AND purpose = \(bind: purpose.rawValue)
            """).row(UserTokenRecord.self) else { return nil }
        guard token.usedAt == nil, token.expiresAt > now else { return nil }
        try await sql.raw("UPDATE user_tokens SET used_at = \(bind: now) WHERE token_hash = \(bind: hash) AND used_at IS NULL").run()
        return token
    }

    static func invalidateAll(user: String, purpose: Purpose, now: Int64, _ sql: any SQLDatabase) async throws {
        try await sql.raw("UPDATE user_tokens SET used_at = \(bind: now) WHERE user_id = \(bind: user) AND purpose = \(bind: purpose.rawValue) AND used_at IS NULL").run()
    }
}
