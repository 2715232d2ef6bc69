import WrennWire

/// Who is making a request, as established by the authentication middleware.
public struct Principal: Sendable {
    /// How the caller proved who they are.
    public enum Credential: Sendable {
        /// A `wrenn_sid` cookie session; `csrfHash` is what the `X-CSRF-Token` must hash to.
        case session(id: String, csrfHash: String)
        /// An `X-API-Key`; it acts for its team, not for a user.
        case apiKey(id: String, name: String)
    }

    public var credential: Credential
    /// The user behind a session; nil for API keys.
    public var userID: String?
    public var email: String
    public var name: String
    public var isAdmin: Bool
    /// The team the request acts on; nil when a session's user belongs to no live team.
    public var teamID: String?
    /// The user's role in `teamID` (nil for API keys and team-less sessions).
    public var role: TeamRole?
    /// A platform admin acting on another team's resources through `/v1/admin/…` (`teamID` is that team):
    /// audit entries record it (`metadata.via = "admin"`).
    public var viaAdmin: Bool = false

    public var sessionID: String? {
        if case .session(let id, _) = credential { return id }
        return nil
    }

    /// The audit log's view of this caller.
    var actor: AuditActor {
        switch credential {
        case .session: return AuditActor(type: "user", id: userID, name: email, viaAdmin: viaAdmin)
        case .apiKey(let id, let name): return AuditActor(type: "api_key", id: id, name: name)
        }
    }
}

/// The actor recorded with an audit entry.
struct AuditActor: Sendable {
    var type: String
    var id: String?
    var name: String
    /// A platform admin acting through the admin API (recorded as `metadata.via = "admin"`).
    var viaAdmin: Bool = false

    static let system = AuditActor(type: "system", id: nil, name: "system")
}
