import Foundation

// Wire types of the account half of the API (tags auth, me, account, api-keys, users, teams, audit).
// Names follow the spec's schemas (`spec/openapi.yaml`); JSON keys are snake_case as the spec spells them.

/// `SignupRequest`.
public struct SignupRequest: Codable, Sendable {
    public var email: String
    public var password: String
    public var name: String
    public init(email: String, password: String, name: String) {
        self.email = email; self.password = password; self.name = name
    }
}

/// `SignupResponse`.
public struct SignupResponse: Codable, Sendable {
    public var message: String
    public init(message: String) { self.message = message }
}

/// `LoginRequest`.
public struct LoginRequest: Codable, Sendable {
    public var email: String
    public var password: String
    public init(email: String, password: String) { self.email = email; self.password = password }
}

/// Body of `POST /v1/auth/activate` and of the reset-confirm token field.
public struct TokenRequest: Codable, Sendable {
    public var token: String
    public init(token: String) { self.token = token }
}

/// Body of `POST /v1/auth/switch-team`.
public struct SwitchTeamRequest: Codable, Sendable {
    public var teamId: String
    public init(teamId: String) { self.teamId = teamId }
    enum CodingKeys: String, CodingKey { case teamId = "team_id" }
}

/// `SessionResponse`: identity the SPA needs; the credential itself is the `wrenn_sid` cookie.
public struct SessionResponse: Codable, Sendable, Equatable {
    public var userId: String
    public var teamId: String
    public var email: String
    public var name: String
    public var role: String
    public var isAdmin: Bool
    public init(userId: String, teamId: String, email: String, name: String, role: String, isAdmin: Bool) {
        self.userId = userId; self.teamId = teamId; self.email = email; self.name = name; self.role = role; self.isAdmin = isAdmin
    }
    enum CodingKeys: String, CodingKey {
        case userId = "user_id", teamId = "team_id", email, name, role, isAdmin = "is_admin"
    }
}

/// One entry of `GET /v1/me/sessions`.
public struct SessionInfo: Codable, Sendable, Equatable {
    public var id: String
    public var userAgent: String
    public var ipAddress: String
    public var createdAt: Date
    public var lastSeenAt: Date
    public var expiresAt: Date
    public var current: Bool
    public init(id: String, userAgent: String, ipAddress: String, createdAt: Date, lastSeenAt: Date, expiresAt: Date, current: Bool) {
        self.id = id; self.userAgent = userAgent; self.ipAddress = ipAddress
        self.createdAt = createdAt; self.lastSeenAt = lastSeenAt; self.expiresAt = expiresAt; self.current = current
    }
    enum CodingKeys: String, CodingKey {
        case id, userAgent = "user_agent", ipAddress = "ip_address", createdAt = "created_at"
        case lastSeenAt = "last_seen_at", expiresAt = "expires_at", current
    }
}

/// Body of `GET /v1/me/sessions`.
public struct SessionList: Codable, Sendable {
    public var sessions: [SessionInfo]
    public init(sessions: [SessionInfo]) { self.sessions = sessions }
}

/// `MeResponse`.
public struct MeResponse: Codable, Sendable, Equatable {
    public var name: String
    public var email: String
    public var hasPassword: Bool
    public var providers: [String]
    public init(name: String, email: String, hasPassword: Bool, providers: [String]) {
        self.name = name; self.email = email; self.hasPassword = hasPassword; self.providers = providers
    }
    enum CodingKeys: String, CodingKey { case name, email, hasPassword = "has_password", providers }
}

/// Body of `PATCH /v1/me` and of team create/rename.
public struct NameRequest: Codable, Sendable {
    public var name: String
    public init(name: String) { self.name = name }
}

/// Body of `DELETE /v1/me`.
public struct DeleteAccountRequest: Codable, Sendable {
    public var confirmation: String
    public init(confirmation: String) { self.confirmation = confirmation }
}

/// `ChangePasswordRequest`.
public struct ChangePasswordRequest: Codable, Sendable {
    public var currentPassword: String?
    public var newPassword: String
    public var confirmPassword: String?
    public init(currentPassword: String? = nil, newPassword: String, confirmPassword: String? = nil) {
        self.currentPassword = currentPassword; self.newPassword = newPassword; self.confirmPassword = confirmPassword
    }
    enum CodingKeys: String, CodingKey {
        case currentPassword = "current_password", newPassword = "new_password", confirmPassword = "confirm_password"
    }
}

/// Body of `POST /v1/me/password/reset`.
public struct PasswordResetRequest: Codable, Sendable {
    public var email: String
    public init(email: String) { self.email = email }
}

/// Body of `POST /v1/me/password/reset/confirm`.
public struct PasswordResetConfirmRequest: Codable, Sendable {
    public var token: String
    public var newPassword: String
    public init(token: String, newPassword: String) { self.token = token; self.newPassword = newPassword }
    enum CodingKeys: String, CodingKey { case token, newPassword = "new_password" }
}

/// Body of `GET /v1/me/providers/{provider}/connect`.
public struct AuthURLResponse: Codable, Sendable {
    public var authURL: String
    public init(authURL: String) { self.authURL = authURL }
    enum CodingKeys: String, CodingKey { case authURL = "auth_url" }
}

/// `CreateAPIKeyRequest`.
public struct CreateAPIKeyRequest: Codable, Sendable {
    public var name: String?
    public init(name: String? = nil) { self.name = name }
}

/// `APIKeyResponse`.
public struct APIKeyResponse: Codable, Sendable, Equatable {
    public var id: String
    public var teamId: String
    public var name: String
    public var keyPrefix: String
    public var createdAt: Date
    public var lastUsed: Date?
    public var key: String?
    public init(id: String, teamId: String, name: String, keyPrefix: String, createdAt: Date, lastUsed: Date?, key: String?) {
        self.id = id; self.teamId = teamId; self.name = name; self.keyPrefix = keyPrefix
        self.createdAt = createdAt; self.lastUsed = lastUsed; self.key = key
    }
    enum CodingKeys: String, CodingKey {
        case id, teamId = "team_id", name, keyPrefix = "key_prefix", createdAt = "created_at", lastUsed = "last_used", key
    }
}

/// `UserSearchResult`.
public struct UserSearchResult: Codable, Sendable, Equatable {
    public var userId: String
    public var email: String
    public init(userId: String, email: String) { self.userId = userId; self.email = email }
    enum CodingKeys: String, CodingKey { case userId = "user_id", email }
}

/// Team roles, strongest first.
public enum TeamRole: String, Codable, Sendable, CaseIterable {
    case owner, admin, member
    /// Owners and admins manage the team (rename, members, roles).
    public var canManage: Bool { self != .member }
}

/// `Team`.
public struct Team: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var slug: String
    public var createdAt: Date
    public init(id: String, name: String, slug: String, createdAt: Date) {
        self.id = id; self.name = name; self.slug = slug; self.createdAt = createdAt
    }
    enum CodingKeys: String, CodingKey { case id, name, slug, createdAt = "created_at" }
}

/// `TeamWithRole` (the spec's allOf Team + role, flattened).
public struct TeamWithRole: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var slug: String
    public var createdAt: Date
    public var role: TeamRole
    public init(team: Team, role: TeamRole) {
        self.id = team.id; self.name = team.name; self.slug = team.slug; self.createdAt = team.createdAt; self.role = role
    }
    enum CodingKeys: String, CodingKey { case id, name, slug, createdAt = "created_at", role }
}

/// `TeamMember`.
public struct TeamMember: Codable, Sendable, Equatable {
    public var userId: String
    public var email: String
    public var role: TeamRole
    public var joinedAt: Date
    public init(userId: String, email: String, role: TeamRole, joinedAt: Date) {
        self.userId = userId; self.email = email; self.role = role; self.joinedAt = joinedAt
    }
    enum CodingKeys: String, CodingKey { case userId = "user_id", email, role, joinedAt = "joined_at" }
}

/// `TeamDetail`.
public struct TeamDetail: Codable, Sendable {
    public var team: Team
    public var members: [TeamMember]
    public init(team: Team, members: [TeamMember]) { self.team = team; self.members = members }
}

/// Body of `POST /v1/teams/{id}/members`.
public struct AddMemberRequest: Codable, Sendable {
    public var email: String
    public init(email: String) { self.email = email }
}

/// Body of `PATCH /v1/teams/{id}/members/{uid}`.
public struct UpdateRoleRequest: Codable, Sendable {
    public var role: String
    public init(role: String) { self.role = role }
}

/// `AuditLogEntry`.
public struct AuditLogEntry: Codable, Sendable, Equatable {
    public var id: String
    public var actorType: String
    public var actorId: String?
    public var actorName: String
    public var resourceType: String
    public var resourceId: String?
    public var action: String
    public var scope: String
    public var status: String
    public var metadata: [String: String]
    public var createdAt: Date
    public init(id: String, actorType: String, actorId: String?, actorName: String, resourceType: String,
                resourceId: String?, action: String, scope: String, status: String, metadata: [String: String], createdAt: Date) {
        self.id = id; self.actorType = actorType; self.actorId = actorId; self.actorName = actorName
        self.resourceType = resourceType; self.resourceId = resourceId; self.action = action; self.scope = scope
        self.status = status; self.metadata = metadata; self.createdAt = createdAt
    }
    enum CodingKeys: String, CodingKey {
        case id, actorType = "actor_type", actorId = "actor_id", actorName = "actor_name"
        case resourceType = "resource_type", resourceId = "resource_id", action, scope, status, metadata
        case createdAt = "created_at"
    }
}

/// Cursor of an audit page: pass both values back as `before` / `before_id`.
public struct AuditCursor: Codable, Sendable, Equatable {
    public var before: Date
    public var beforeId: String
    public init(before: Date, beforeId: String) { self.before = before; self.beforeId = beforeId }
    enum CodingKeys: String, CodingKey { case before, beforeId = "before_id" }
}

/// Body of `GET /v1/audit-logs`.
public struct AuditLogPage: Codable, Sendable {
    public var entries: [AuditLogEntry]
    public var nextCursor: AuditCursor?
    public init(entries: [AuditLogEntry], nextCursor: AuditCursor?) { self.entries = entries; self.nextCursor = nextCursor }
    enum CodingKeys: String, CodingKey { case entries, nextCursor = "next_cursor" }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(entries, forKey: .entries)
        try c.encode(nextCursor, forKey: .nextCursor) // explicit null when there is no next page
    }
}
