import Foundation
import Logging
import SQLKit
import WrennWire

/// Accounts: signup and activation, login and logout, the caller's profile, passwords, account deletion.
public struct AccountService: Sendable {
    static let activationTTL: TimeInterval = 30 * 60
    static let resetTTL: TimeInterval = 15 * 60
    /// Soft-deleted accounts are purged after this long.
    static let deletionGrace: TimeInterval = 15 * 24 * 3600

    let database: Database
    let clock: any WallClock
    let hasher: PasswordHasher
    let sessions: SessionService
    let teams: TeamService
    let audit: AuditService
    let mailer: Mailer
    let frontendURL: String
    let logger: Logger

    // MARK: Signup and activation

    /// Creates an inactive user and mails an activation link (30 minutes, single use).
    public func signup(_ request: SignupRequest) async throws -> SignupResponse {
        let email = try Validation.email(request.email)
        try Validation.password(request.password)
        let name = try Validation.personName(request.name)
        let hash = try await hasher.hash(request.password)
        let now = clock.now()
        let token = Secrets.randomHex(bytes: 16)
        let user = try await database.transaction { sql -> UserRecord in
            if let existing = try await UserRepository.find(email: email, sql) {
                guard existing.userStatus == .inactive else {
                    throw ServiceError.conflict("email_taken", "an account with this email already exists")
                }
                guard Date(millis: existing.createdAt).addingTimeInterval(Self.activationTTL) <= now else {
                    throw ServiceError.conflict("signup_cooldown", "a signup for this email is awaiting activation; check your inbox or retry in 30 minutes")
                }
                try await UserRepository.delete(id: existing.id, sql)
            }
            let user = UserRecord(id: PrefixedID.make(.user), email: email, passwordHash: hash, name: name, isAdmin: 0,
                                  status: UserStatus.inactive.rawValue, createdAt: now.millis, updatedAt: now.millis, deletedAt: nil)
            try await UserRepository.insert(user, sql)
            try await UserTokenRepository.insert(hash: Secrets.sha256Hex(token), user: user.id, purpose: .activation, now: now.millis,
                                                 expires: now.addingTimeInterval(Self.activationTTL).millis, sql)
            try await audit.record(.init(team: nil, actor: AuditActor(type: "user", id: user.id, name: email), resourceType: "user",
                                         resourceID: user.id, action: "signup", scope: "user"), sql)
            return user
        }
        let mail = MailTemplates.activation(name: user.name, link: link("activate", token: token))
        await mailer.send(to: email, subject: mail.subject, body: mail.body)
        return SignupResponse(message: "Account created. Check your email for an activation link (valid for 30 minutes).")
    }

    /// Consumes an activation token, activates the user, creates their default team and signs them in.
    public func activate(token: String, origin: SessionService.Origin) async throws -> SessionService.Issued {
        let now = clock.now()
        return try await database.transaction { sql in
            guard let record = try await UserTokenRepository.consume(hash: Secrets.sha256Hex(token), purpose: .activation, now: now.millis, sql),
                  var user = try await UserRepository.find(id: record.userId, sql)
            else { throw ServiceError(.badRequest, "invalid_token", "the activation link is invalid or has expired") }
            guard user.userStatus == .inactive else {
                throw ServiceError(.badRequest, "already_activated", "this account is already active")
            }
            try await UserRepository.setStatus(id: user.id, status: .active, deletedAt: nil, now: now.millis, sql)
            user.status = UserStatus.active.rawValue
            user = try await promoteFirstAdmin(user, sql)
            let team = try await teams.ensureDefaultTeam(for: user, sql)
            try await audit.record(.init(team: team.id, actor: AuditActor(type: "user", id: user.id, name: user.email),
                                         resourceType: "user", resourceID: user.id, action: "activate", scope: "user"), sql)
            return try await sessions.issue(user: user, team: team.id, role: team.role, origin: origin, sql)
        }
    }

    /// The first account to become active on an installation becomes its platform admin.
    func promoteFirstAdmin(_ user: UserRecord, _ sql: any SQLDatabase) async throws -> UserRecord {
        guard try await UserRepository.countActive(sql) == 1 else { return user }
        try await UserRepository.setAdmin(id: user.id, admin: true, sql)
        var promoted = user
        promoted.isAdmin = 1
        return promoted
    }

    // MARK: Login and sessions

    /// Email + password login. Unknown email, wrong password and password-less accounts all answer the same 401.
    public func login(_ request: LoginRequest, origin: SessionService.Origin) async throws -> SessionService.Issued {
        let email = request.email.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        let user = try await database.read { sql in try await UserRepository.find(email: email, sql) }
        let usable = user.flatMap { $0.userStatus == .deleted ? nil : $0 }
        let ok = try await hasher.verify(request.password, hash: usable?.passwordHash)
        guard ok, let user = usable else {
            if let user = usable {
                try? await database.read { sql in
                    try await audit.record(.init(team: nil, actor: AuditActor(type: "user", id: user.id, name: user.email),
                                                 resourceType: "session", resourceID: nil, action: "login", scope: "user", status: "failure"), sql)
                }
            }
            throw ServiceError.unauthorized("invalid email or password")
        }
        switch user.userStatus {
        case .inactive: throw ServiceError(.forbidden, "account_not_activated", "activate your account first; check your email")
        case .disabled: throw ServiceError(.forbidden, "account_disabled", "this account has been disabled")
        case .deleted: throw ServiceError.unauthorized("invalid email or password")
        case .active: break
        }
        return try await database.transaction { sql in
            let team = try await teams.ensureDefaultTeam(for: user, sql)
            try await audit.record(.init(team: team.id, actor: AuditActor(type: "user", id: user.id, name: user.email),
                                         resourceType: "session", resourceID: nil, action: "login", scope: "user"), sql)
            return try await sessions.issue(user: user, team: team.id, role: team.role, origin: origin, sql)
        }
    }

    /// Revokes the calling session.
    public func logout(_ principal: Principal) async throws {
        _ = try principal.requireUser()
        guard let sessionID = principal.sessionID else { throw ServiceError.unauthorized() }
        let now = clock.now().millis
        try await database.transaction { sql in
            try await SessionRepository.revoke(id: sessionID, at: now, sql)
            try await audit.record(.init(team: principal.teamID, actor: principal.actor, resourceType: "session", resourceID: sessionID,
                                         action: "logout", scope: "user"), sql)
        }
    }

    /// Revokes every session of the caller, the calling one included.
    public func logoutAll(_ principal: Principal) async throws {
        let user = try principal.requireUser()
        let now = clock.now().millis
        try await database.transaction { sql in
            try await SessionRepository.revokeAll(user: user, at: now, sql)
            try await audit.record(.init(team: principal.teamID, actor: principal.actor, resourceType: "session", resourceID: nil,
                                         action: "logout_all", scope: "user"), sql)
        }
    }

    /// Revokes one of the caller's sessions; someone else's session id is 404.
    public func revokeSession(_ principal: Principal, id: String) async throws {
        let user = try principal.requireUser()
        let now = clock.now().millis
        try await database.transaction { sql in
            guard let session = try await SessionRepository.find(id: id, sql), session.userId == user, session.revokedAt == nil else {
                throw ServiceError.notFound("session")
            }
            try await SessionRepository.revoke(id: id, at: now, sql)
            try await audit.record(.init(team: principal.teamID, actor: principal.actor, resourceType: "session", resourceID: id,
                                         action: "revoke", scope: "user"), sql)
        }
    }

    /// Moves the caller to another of their teams with a new session id (the old one is revoked).
    public func switchTeam(_ principal: Principal, teamID: String, origin: SessionService.Origin) async throws -> SessionService.Issued {
        let userID = try principal.requireUser()
        guard PrefixedID.parse(teamID, as: .team) != nil else { throw ServiceError.notFound("team") }
        let now = clock.now().millis
        return try await database.transaction { sql in
            guard try await TeamRepository.find(id: teamID, sql) != nil else { throw ServiceError.notFound("team") }
            guard let membership = try await TeamRepository.membership(team: teamID, user: userID, sql),
                  let role = TeamRole(rawValue: membership.role) else {
                throw ServiceError.forbidden("you are not a member of this team")
            }
            guard let user = try await UserRepository.find(id: userID, sql) else { throw ServiceError.unauthorized() }
            if let old = principal.sessionID { try await SessionRepository.revoke(id: old, at: now, sql) }
            try await audit.record(.init(team: teamID, actor: principal.actor, resourceType: "session", resourceID: nil,
                                         action: "switch_team", scope: "user"), sql)
            return try await sessions.issue(user: user, team: teamID, role: role, origin: origin, sql)
        }
    }

    // MARK: Profile

    public func me(_ principal: Principal) async throws -> MeResponse {
        let userID = try principal.requireUser()
        return try await database.read { sql in
            guard let user = try await UserRepository.find(id: userID, sql) else { throw ServiceError.unauthorized() }
            let providers = try await OAuthLinkRepository.links(user: userID, sql).map(\.provider)
            return MeResponse(name: user.name, email: user.email, hasPassword: user.passwordHash != nil, providers: providers)
        }
    }

    public func rename(_ principal: Principal, name: String) async throws {
        let userID = try principal.requireUser()
        let name = try Validation.personName(name)
        let now = clock.now().millis
        try await database.transaction { sql in
            try await UserRepository.setName(id: userID, name: name, now: now, sql)
            try await audit.record(.init(team: principal.teamID, actor: principal.actor, resourceType: "user", resourceID: userID,
                                         action: "rename", scope: "user"), sql)
        }
    }

    /// Soft-deletes the caller's account (purged after 15 days). Refused while they own a team with other members;
    /// teams they own alone are deleted with the account.
    public func deleteAccount(_ principal: Principal, confirmation: String) async throws {
        let userID = try principal.requireUser()
        let now = clock.now().millis
        try await database.transaction { sql in
            guard let user = try await UserRepository.find(id: userID, sql) else { throw ServiceError.unauthorized() }
            guard confirmation.trimmingCharacters(in: .whitespaces).lowercased() == user.email else {
                throw ServiceError.invalid("confirmation: must match your email address")
            }
            let owned = try await TeamRepository.teams(ofUser: userID, sql).filter { $0.role == TeamRole.owner.rawValue }
            for team in owned where try await TeamRepository.memberCount(team: team.id, sql) > 1 {
                throw ServiceError.conflict("owns_team_with_members",
                                            "you own team \"\(team.name)\", which has other members; transfer or delete it first")
            }
            for team in owned { try await teams.softDelete(teamID: team.id, actor: principal.actor, sql) }
            try await TeamRepository.removeAllMemberships(user: userID, sql)
            try await UserRepository.setStatus(id: userID, status: .deleted, deletedAt: now, now: now, sql)
            try await SessionRepository.revokeAll(user: userID, at: now, sql)
            try await audit.record(.init(team: nil, actor: principal.actor, resourceType: "user", resourceID: userID,
                                         action: "delete", scope: "user"), sql)
        }
    }

    // MARK: Passwords

    /// Changes (or, for OAuth-only accounts, adds) the caller's password, then signs out every session.
    public func changePassword(_ principal: Principal, _ request: ChangePasswordRequest) async throws {
        let userID = try principal.requireUser()
        try Validation.password(request.newPassword, field: "new_password")
        let user = try await database.read { sql in try await UserRepository.find(id: userID, sql) }
        guard let user else { throw ServiceError.unauthorized() }
        if let existing = user.passwordHash {
            guard let current = request.currentPassword, !current.isEmpty else {
                throw ServiceError.invalid("current_password: required to change an existing password")
            }
            guard try await hasher.verify(current, hash: existing) else {
                throw ServiceError(.unauthorized, "wrong_password", "the current password is incorrect")
            }
        } else {
            guard let confirm = request.confirmPassword else {
                throw ServiceError.invalid("confirm_password: required when adding a password")
            }
            guard confirm == request.newPassword else { throw ServiceError.invalid("confirm_password: does not match new_password") }
        }
        let hash = try await hasher.hash(request.newPassword)
        let now = clock.now().millis
        try await database.transaction { sql in
            try await UserRepository.setPasswordHash(id: userID, hash: hash, now: now, sql)
            try await SessionRepository.revokeAll(user: userID, at: now, sql)
            try await audit.record(.init(team: principal.teamID, actor: principal.actor, resourceType: "user", resourceID: userID,
                                         action: user.passwordHash == nil ? "password_add" : "password_change", scope: "user"), sql)
        }
    }

    /// Mails a reset link when `email` belongs to an active account; answers the same either way.
    public func requestPasswordReset(email rawEmail: String) async throws {
        guard let email = try? Validation.email(rawEmail) else { return }
        let now = clock.now()
        let token = Secrets.randomHex(bytes: 16)
        let user = try await database.transaction { sql -> UserRecord? in
            guard let user = try await UserRepository.find(email: email, sql), user.userStatus == .active else { return nil }
            try await UserTokenRepository.invalidateAll(user: user.id, purpose: .passwordReset, now: now.millis, sql)
            try await UserTokenRepository.insert(hash: Secrets.sha256Hex(token), user: user.id, purpose: .passwordReset,
                                                 now: now.millis, expires: now.addingTimeInterval(Self.resetTTL).millis, sql)
            try await audit.record(.init(team: nil, actor: AuditActor(type: "user", id: user.id, name: user.email), resourceType: "user",
                                         resourceID: user.id, action: "password_reset_request", scope: "user"), sql)
            return user
        }
        guard let user else { return }
        let mail = MailTemplates.passwordReset(name: user.name, link: link("reset-password", token: token))
        await mailer.send(to: user.email, subject: mail.subject, body: mail.body)
    }

    /// Consumes a reset token, sets the new password and signs out every session.
    public func confirmPasswordReset(token: String, newPassword: String) async throws {
        try Validation.password(newPassword, field: "new_password")
        let hash = try await hasher.hash(newPassword)
        let now = clock.now().millis
        try await database.transaction { sql in
            guard let record = try await UserTokenRepository.consume(hash: Secrets.sha256Hex(token), purpose: .passwordReset, now: now, sql),
                  let user = try await UserRepository.find(id: record.userId, sql), user.userStatus == .active
            else { throw ServiceError(.badRequest, "invalid_token", "the reset link is invalid or has expired") }
            try await UserRepository.setPasswordHash(id: user.id, hash: hash, now: now, sql)
            try await SessionRepository.revokeAll(user: user.id, at: now, sql)
            try await audit.record(.init(team: nil, actor: AuditActor(type: "user", id: user.id, name: user.email), resourceType: "user",
                                         resourceID: user.id, action: "password_reset", scope: "user"), sql)
        }
    }

    // MARK: Purge

    /// Permanently removes accounts soft-deleted more than 15 days ago; their audit entries become `deleted-user`.
    /// Returns how many were purged.
    @discardableResult
    public func purgeDeletedAccounts() async throws -> Int {
        let cutoff = clock.now().addingTimeInterval(-Self.deletionGrace).millis
        return try await database.transaction { sql in
            let due = try await UserRepository.deletedBefore(cutoff, sql)
            for user in due {
                try await AuditRepository.anonymize(actor: user.id, sql)
                try await UserRepository.delete(id: user.id, sql)
            }
            return due.count
        }
    }

    func link(_ path: String, token: String) -> String {
        var base = frontendURL
        while base.hasSuffix("/") { base.removeLast() }
        return "\(base)/\(path)?token=\(token)"
    }
}
