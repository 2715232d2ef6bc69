import Foundation
import WrennWire

/// Finding users to add to a team (`GET /v1/users/search`).
public struct UserDirectoryService: Sendable {
    let database: Database

    /// Up to 10 active users whose email starts with `prefix`; the prefix must contain `@` and be ≥ 3 characters.
    public func search(_ principal: Principal, emailPrefix raw: String) async throws -> [UserSearchResult] {
        _ = try principal.requireUser()
        let prefix = raw.trimmingCharacters(in: .whitespaces).lowercased()
        guard prefix.contains("@") else { throw ServiceError.invalid("email: the prefix must contain \"@\"") }
        guard prefix.count >= 3, prefix.count <= 254 else { throw ServiceError.invalid("email: the prefix must be 3–254 characters") }
        return try await database.read { sql in
            try await UserRepository.search(emailPrefix: prefix, limit: 10, sql).map { UserSearchResult(userId: $0.id, email: $0.email) }
        }
    }
}
