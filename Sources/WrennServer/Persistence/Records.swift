import Foundation
import SQLKit

// Row types of the account tables, decoded by column name (snake_case columns → camelCase properties).
// Times are milliseconds since 1970; flags are 0/1.

struct UserRecord: Codable, Sendable {
    var id: String
    var email: String
    var passwordHash: String?
    var name: String
    var isAdmin: Int64
    var status: String
    var createdAt: Int64
    var updatedAt: Int64
    var deletedAt: Int64?

    var admin: Bool { isAdmin != 0 }
    var userStatus: UserStatus { UserStatus(rawValue: status) ?? .disabled }
}

/// Lifecycle of a user account (reference §2).
enum UserStatus: String, Sendable {
    case inactive, active, disabled, deleted
}

struct TeamRecord: Codable, Sendable {
    var id: String
    var name: String
    var slug: String
    var isByoc: Int64
    var createdAt: Int64
    var deletedAt: Int64?
}

struct MembershipRecord: Codable, Sendable {
    var teamId: String
    var userId: String
    var role: String
    var isDefault: Int64
    var joinedAt: Int64
}

struct SessionRecord: Codable, Sendable {
    var id: String
    var sidHash: String
    var csrfHash: String
    var userId: String
    var teamId: String
    var userAgent: String
    var ipAddress: String
    var createdAt: Int64
    var lastSeenAt: Int64
    var expiresAt: Int64
    var revokedAt: Int64?
}

struct APIKeyRecord: Codable, Sendable {
    var id: String
    var teamId: String
    var name: String
    var keyHash: String
    var keyPrefix: String
    var createdBy: String?
    var createdAt: Int64
    var lastUsed: Int64?
}

struct UserTokenRecord: Codable, Sendable {
    var tokenHash: String
    var userId: String
    var purpose: String
    var createdAt: Int64
    var expiresAt: Int64
    var usedAt: Int64?
}

struct AuditRecord: Codable, Sendable {
    var id: String
    var teamId: String?
    var actorType: String
    var actorId: String?
    var actorName: String
    var resourceType: String
    var resourceId: String?
    var action: String
    var scope: String
    var status: String
    var metadata: String
    var createdAt: Int64
}

extension SQLQueryFetcher {
    /// Decodes all rows into `T` by column name.
    func rows<T: Decodable>(_ type: T.Type) async throws -> [T] {
        try await all(decoding: T.self, with: SQLRowDecoder(keyDecodingStrategy: .convertFromSnakeCase))
    }

    /// Decodes the first row into `T`, if any.
    func row<T: Decodable>(_ type: T.Type) async throws -> T? {
        try await first(decoding: T.self, with: SQLRowDecoder(keyDecodingStrategy: .convertFromSnakeCase))
    }
}
