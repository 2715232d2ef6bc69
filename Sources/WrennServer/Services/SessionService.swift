import Foundation
import SQLKit
import WrennWire

/// Opaque cookie sessions: creation, lookup with idle and absolute expiry, rotation, revocation.
///
/// The browser holds `wrenn_sid` (random 32 bytes) and `wrenn_csrf` (random 32 bytes); the database holds only their
/// SHA-256. A session lives at most 24 h from creation and dies after 6 h without a request.
public struct SessionService: Sendable {
    static let idleWindow: TimeInterval = 6 * 3600
    static let absoluteLifetime: TimeInterval = 24 * 3600
    /// `last_seen_at` is written at most this often per session.
    static let touchInterval: TimeInterval = 60

    let database: Database
    let clock: any WallClock

    /// What a new session gives the browser.
    public struct Issued: Sendable {
        public var sid: String
        public var csrf: String
        public var expiresAt: Date
        public var response: SessionResponse
    }

    /// Where a request came from, recorded with the session.
    public struct Origin: Sendable {
        public var userAgent: String
        public var ipAddress: String
        public init(userAgent: String, ipAddress: String) { self.userAgent = userAgent; self.ipAddress = ipAddress }
    }

    /// Creates a session for `user` acting on `team` (which must be one of the user's teams).
    func issue(user: UserRecord, team: String, role: TeamRole, origin: Origin, _ sql: any SQLDatabase) async throws -> Issued {
        let now = clock.now()
        let sid = Secrets.randomHex(bytes: 32)
        let csrf = Secrets.randomHex(bytes: 32)
        let expires = now.addingTimeInterval(Self.absoluteLifetime)
        try await SessionRepository.insert(SessionRecord(
            id: PrefixedID.make(.session), sidHash: Secrets.sha256Hex(sid), csrfHash: Secrets.sha256Hex(csrf), userId: user.id,
            teamId: team, userAgent: String(origin.userAgent.prefix(512)), ipAddress: String(origin.ipAddress.prefix(64)),
            createdAt: now.millis, lastSeenAt: now.millis, expiresAt: expires.millis, revokedAt: nil), sql)
        return Issued(sid: sid, csrf: csrf, expiresAt: expires, response: SessionResponse(
            userId: user.id, teamId: team, email: user.email, name: user.name, role: role.rawValue, isAdmin: user.admin))
    }

    /// Resolves a `wrenn_sid` to a principal, or nil when it is unknown, revoked, idle too long, past its lifetime,
    /// or its user is no longer active. A session whose team was deleted or left moves to the user's next team.
    public func authenticate(sid: String) async throws -> Principal? {
        let now = clock.now()
        return try await database.read { sql -> Principal? in
            guard let session = try await SessionRepository.find(sidHash: Secrets.sha256Hex(sid), sql),
                  session.revokedAt == nil,
                  session.expiresAt > now.millis,
                  Date(millis: session.lastSeenAt).addingTimeInterval(Self.idleWindow) > now,
                  let user = try await UserRepository.find(id: session.userId, sql),
                  user.userStatus == .active
            else { return nil }
            var teamID: String? = session.teamId
            var role: TeamRole?
            if let m = try await TeamRepository.membership(team: session.teamId, user: user.id, sql) {
                role = TeamRole(rawValue: m.role)
            } else if let next = try await TeamRepository.teams(ofUser: user.id, sql).first {
                teamID = next.id
                role = TeamRole(rawValue: next.role)
                try await SessionRepository.setTeam(id: session.id, team: next.id, sql)
            } else {
                teamID = nil
            }
            if now.timeIntervalSince(Date(millis: session.lastSeenAt)) >= Self.touchInterval {
                try await SessionRepository.touch(id: session.id, at: now.millis, sql)
            }
            return Principal(credential: .session(id: session.id, csrfHash: session.csrfHash), userID: user.id, email: user.email,
                             name: user.name, isAdmin: user.admin, teamID: teamID, role: role)
        }
    }

    /// The caller's live sessions, newest first; `current` marks the one making the request.
    public func list(for principal: Principal) async throws -> [SessionInfo] {
        let user = try principal.requireUser()
        let now = clock.now()
        let sessions = try await database.read { sql in try await SessionRepository.live(user: user, now: now.millis, sql) }
        return sessions
            .filter { Date(millis: $0.lastSeenAt).addingTimeInterval(Self.idleWindow) > now }
            .map { s in
                SessionInfo(id: s.id, userAgent: s.userAgent, ipAddress: s.ipAddress, createdAt: Date(millis: s.createdAt),
                            lastSeenAt: Date(millis: s.lastSeenAt),
                            expiresAt: min(Date(millis: s.expiresAt), Date(millis: s.lastSeenAt).addingTimeInterval(Self.idleWindow)),
                            current: s.id == principal.sessionID)
            }
    }
}

extension Principal {
    /// The session's user id, or 401 for an API-key caller on a session-only operation.
    func requireUser() throws -> String {
        guard case .session = credential, let userID else {
            throw ServiceError.unauthorized("this operation needs a signed-in session (wrenn_sid cookie), not an API key")
        }
        return userID
    }

    /// The team the request acts on, or 403 `no_team`.
    func requireTeam() throws -> String {
        guard let teamID else { throw ServiceError(.forbidden, "no_team", "you are not a member of any team") }
        return teamID
    }
}
