import Foundation

// Bodies of the admin API (tag `admin`, `/v1/admin/…`). The contract leaves the list items as free-form objects;
// these are their fields.

/// One item of `GET /v1/admin/users`.
public struct AdminUser: Codable, Sendable, Equatable {
    public var id: String
    public var email: String
    public var name: String
    public var isAdmin: Bool
    /// `inactive` (email not yet confirmed), `active`, `disabled` (deactivated by an admin) or `deleted`.
    public var status: String
    public var createdAt: Date
    public init(id: String, email: String, name: String, isAdmin: Bool, status: String, createdAt: Date) {
        self.id = id; self.email = email; self.name = name; self.isAdmin = isAdmin; self.status = status; self.createdAt = createdAt
    }
    enum CodingKeys: String, CodingKey { case id, email, name, isAdmin = "is_admin", status, createdAt = "created_at" }
}

/// One item of `GET /v1/admin/teams`.
public struct AdminTeam: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var slug: String
    public var isByoc: Bool
    public var createdAt: Date
    public var memberCount: Int
    /// The owner (nil for the platform team, which has none).
    public var ownerId: String?
    public var ownerEmail: String?
    /// Capsules that are not stopped or errored.
    public var activeCapsules: Int
    public init(id: String, name: String, slug: String, isByoc: Bool, createdAt: Date, memberCount: Int, ownerId: String?,
                ownerEmail: String?, activeCapsules: Int) {
        self.id = id; self.name = name; self.slug = slug; self.isByoc = isByoc; self.createdAt = createdAt; self.memberCount = memberCount
        self.ownerId = ownerId; self.ownerEmail = ownerEmail; self.activeCapsules = activeCapsules
    }
    enum CodingKeys: String, CodingKey {
        case id, name, slug, isByoc = "is_byoc", createdAt = "created_at", memberCount = "member_count", ownerId = "owner_id",
             ownerEmail = "owner_email", activeCapsules = "active_capsules"
    }
}

/// Body of `PUT /v1/admin/users/{id}/active`.
public struct SetUserActiveRequest: Codable, Sendable {
    public var active: Bool
    public init(active: Bool) { self.active = active }
}

/// Body of `PUT /v1/admin/users/{id}/admin`.
public struct SetUserAdminRequest: Codable, Sendable {
    public var admin: Bool
    public init(admin: Bool) { self.admin = admin }
}

/// Body of `PUT /v1/admin/teams/{id}/byoc`.
public struct SetTeamBYOCRequest: Codable, Sendable {
    public var byoc: Bool
    public init(byoc: Bool) { self.byoc = byoc }
}

/// The extra field of `POST /v1/admin/capsules` (beside `CreateCapsuleRequest`): the team to create the capsule for;
/// the platform team when absent.
public struct AdminCapsuleTarget: Codable, Sendable {
    public var teamId: String?
    public init(teamId: String? = nil) { self.teamId = teamId }
    enum CodingKeys: String, CodingKey { case teamId = "team_id" }
}

/// Body of `POST /v1/admin/capsules/{id}/snapshot`.
public struct AdminSnapshotRequest: Codable, Sendable {
    public var name: String
    public init(name: String) { self.name = name }
}
