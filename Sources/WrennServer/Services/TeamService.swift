import Foundation
import SQLKit
import WrennWire

/// Teams and their members, with the role rules of the spec (reference Appendix D): any member reads; owners and
/// admins rename and manage members; only the owner deletes; the owner cannot leave or be demoted or removed.
/// A team the caller does not belong to answers 404, never revealing that it exists.
public struct TeamService: Sendable {
    let database: Database
    let clock: any WallClock
    let audit: AuditService

    /// The user's team to sign in to: their default team, else any team, else a new default team they own.
    func ensureDefaultTeam(for user: UserRecord, _ sql: any SQLDatabase) async throws -> (id: String, role: TeamRole) {
        if let team = try await TeamRepository.teams(ofUser: user.id, sql).first, let role = TeamRole(rawValue: team.role) {
            return (team.id, role)
        }
        let team = try await insertTeam(name: Validation.defaultTeamName(for: user.name), owner: user.id, isDefault: true, sql)
        try await audit.record(.init(team: team.id, actor: AuditActor(type: "user", id: user.id, name: user.email),
                                     resourceType: "team", resourceID: team.id, action: "create", scope: "admin"), sql)
        return (team.id, .owner)
    }

    func insertTeam(name: String, owner: String, isDefault: Bool, _ sql: any SQLDatabase) async throws -> Team {
        let now = clock.now().millis
        var slug = Self.makeSlug()
        while try await TeamRepository.slugExists(slug, sql) { slug = Self.makeSlug() }
        let record = TeamRecord(id: PrefixedID.make(.team), name: name, slug: slug, isByoc: 0, createdAt: now, deletedAt: nil)
        try await TeamRepository.insert(record, sql)
        try await TeamRepository.addMember(team: record.id, user: owner, role: TeamRole.owner.rawValue, isDefault: isDefault, at: now, sql)
        return Self.team(record)
    }

    /// `xxxxxx-yyyyyy` from 6 random bytes; immutable and never reused (deleted teams keep theirs).
    static func makeSlug() -> String {
        let hex = Secrets.randomHex(bytes: 6)
        return String(hex.prefix(6)) + "-" + String(hex.suffix(6))
    }

    static func team(_ r: TeamRecord) -> Team {
        Team(id: r.id, name: r.name, slug: r.slug, createdAt: Date(millis: r.createdAt))
    }

    // MARK: Operations

    public func list(_ principal: Principal) async throws -> [TeamWithRole] {
        let user = try principal.requireUser()
        return try await database.read { sql in
            try await TeamRepository.teams(ofUser: user, sql).compactMap { t in
                TeamRole(rawValue: t.role).map {
                    TeamWithRole(team: Team(id: t.id, name: t.name, slug: t.slug, createdAt: Date(millis: t.createdAt)), role: $0)
                }
            }
        }
    }

    public func create(_ principal: Principal, name: String) async throws -> TeamWithRole {
        let user = try principal.requireUser()
        let name = try Validation.teamName(name)
        return try await database.transaction { sql in
            let team = try await insertTeam(name: name, owner: user, isDefault: false, sql)
            try await audit.record(.init(team: team.id, actor: principal.actor, resourceType: "team", resourceID: team.id,
                                         action: "create", scope: "admin", metadata: ["name": name]), sql)
            return TeamWithRole(team: team, role: .owner)
        }
    }

    public func detail(_ principal: Principal, teamID: String) async throws -> TeamDetail {
        let user = try principal.requireUser()
        return try await database.read { sql in
            let (team, _) = try await membership(teamID: teamID, user: user, sql)
            return TeamDetail(team: Self.team(team), members: try await Self.members(teamID, sql))
        }
    }

    public func rename(_ principal: Principal, teamID: String, name: String) async throws {
        let user = try principal.requireUser()
        let name = try Validation.teamName(name)
        try await database.transaction { sql in
            let (team, role) = try await membership(teamID: teamID, user: user, sql)
            guard role.canManage else { throw ServiceError.forbidden("only the team's owner or admins can rename it") }
            try await TeamRepository.rename(id: teamID, name: name, sql)
            try await audit.record(.init(team: teamID, actor: principal.actor, resourceType: "team", resourceID: teamID,
                                         action: "rename", scope: "admin", metadata: ["from": team.name, "to": name]), sql)
        }
    }

    public func delete(_ principal: Principal, teamID: String) async throws {
        let user = try principal.requireUser()
        try await database.transaction { sql in
            let (_, role) = try await membership(teamID: teamID, user: user, sql)
            guard role == .owner else { throw ServiceError.forbidden("only the team's owner can delete it") }
            try await softDelete(teamID: teamID, actor: principal.actor, sql)
        }
    }

    /// Soft-deletes a team: the row and its slug stay, its API keys are revoked, sessions on it move elsewhere.
    func softDelete(teamID: String, actor: AuditActor, _ sql: any SQLDatabase) async throws {
        try await TeamRepository.softDelete(id: teamID, at: clock.now().millis, sql)
        try await APIKeyRepository.deleteAll(team: teamID, sql)
        try await audit.record(.init(team: teamID, actor: actor, resourceType: "team", resourceID: teamID, action: "delete", scope: "admin"), sql)
    }

    public func members(_ principal: Principal, teamID: String) async throws -> [TeamMember] {
        let user = try principal.requireUser()
        return try await database.read { sql in
            _ = try await membership(teamID: teamID, user: user, sql)
            return try await Self.members(teamID, sql)
        }
    }

    public func addMember(_ principal: Principal, teamID: String, email rawEmail: String) async throws -> TeamMember {
        let user = try principal.requireUser()
        let email = try Validation.email(rawEmail)
        let now = clock.now().millis
        return try await database.transaction { sql in
            let (_, role) = try await membership(teamID: teamID, user: user, sql)
            guard role.canManage else { throw ServiceError.forbidden("only the team's owner or admins can add members") }
            guard let target = try await UserRepository.find(email: email, sql), target.userStatus == .active else {
                throw ServiceError(.notFound, "not_found", "no active account with that email")
            }
            guard try await TeamRepository.membership(team: teamID, user: target.id, sql) == nil else {
                throw ServiceError(.badRequest, "already_member", "that user is already a member of this team")
            }
            try await TeamRepository.addMember(team: teamID, user: target.id, role: TeamRole.member.rawValue, isDefault: false, at: now, sql)
            try await audit.record(.init(team: teamID, actor: principal.actor, resourceType: "member", resourceID: target.id,
                                         action: "add", scope: "admin", metadata: ["email": target.email]), sql)
            return TeamMember(userId: target.id, email: target.email, role: .member, joinedAt: Date(millis: now))
        }
    }

    public func setRole(_ principal: Principal, teamID: String, userID target: String, role rawRole: String) async throws {
        let user = try principal.requireUser()
        guard let newRole = TeamRole(rawValue: rawRole), newRole != .owner else {
            throw ServiceError.invalid("role: must be \"admin\" or \"member\"")
        }
        try await database.transaction { sql in
            let (_, role) = try await membership(teamID: teamID, user: user, sql)
            guard role.canManage else { throw ServiceError.forbidden("only the team's owner or admins can change roles") }
            guard let current = try await TeamRepository.membership(team: teamID, user: target, sql) else {
                throw ServiceError(.notFound, "not_found", "that user is not a member of this team")
            }
            guard current.role != TeamRole.owner.rawValue else { throw ServiceError.forbidden("the owner's role cannot be changed") }
            try await TeamRepository.setRole(team: teamID, user: target, role: newRole.rawValue, sql)
            try await audit.record(.init(team: teamID, actor: principal.actor, resourceType: "member", resourceID: target,
                                         action: "role_update", scope: "admin", metadata: ["from": current.role, "to": newRole.rawValue]), sql)
        }
    }

    public func removeMember(_ principal: Principal, teamID: String, userID target: String) async throws {
        let user = try principal.requireUser()
        try await database.transaction { sql in
            let (_, role) = try await membership(teamID: teamID, user: user, sql)
            guard role.canManage else { throw ServiceError.forbidden("only the team's owner or admins can remove members") }
            guard let current = try await TeamRepository.membership(team: teamID, user: target, sql) else {
                throw ServiceError(.notFound, "not_found", "that user is not a member of this team")
            }
            guard current.role != TeamRole.owner.rawValue else { throw ServiceError.forbidden("the owner cannot be removed") }
            try await TeamRepository.removeMember(team: teamID, user: target, sql)
            try await audit.record(.init(team: teamID, actor: principal.actor, resourceType: "member", resourceID: target,
                                         action: "remove", scope: "admin"), sql)
        }
    }

    public func leave(_ principal: Principal, teamID: String) async throws {
        let user = try principal.requireUser()
        try await database.transaction { sql in
            let (_, role) = try await membership(teamID: teamID, user: user, sql)
            guard role != .owner else { throw ServiceError.forbidden("the owner cannot leave; delete the team instead") }
            try await TeamRepository.removeMember(team: teamID, user: user, sql)
            try await audit.record(.init(team: teamID, actor: principal.actor, resourceType: "member", resourceID: user,
                                         action: "leave", scope: "admin"), sql)
        }
    }

    // MARK: Helpers

    /// The live team and the caller's role in it; 404 when the team does not exist or the caller is not a member.
    func membership(teamID: String, user: String, _ sql: any SQLDatabase) async throws -> (TeamRecord, TeamRole) {
        guard PrefixedID.parse(teamID, as: .team) != nil || teamID == Migrations.platformTeamID,
              let team = try await TeamRepository.find(id: teamID, sql),
              let m = try await TeamRepository.membership(team: teamID, user: user, sql),
              let role = TeamRole(rawValue: m.role)
        else { throw ServiceError.notFound("team") }
        return (team, role)
    }

    static func members(_ teamID: String, _ sql: any SQLDatabase) async throws -> [TeamMember] {
        try await TeamRepository.members(team: teamID, sql).compactMap { m in
            TeamRole(rawValue: m.role).map { TeamMember(userId: m.userId, email: m.email, role: $0, joinedAt: Date(millis: m.joinedAt)) }
        }
    }
}
