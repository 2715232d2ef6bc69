import Foundation
import Logging
import SQLKit
import WrennWire

/// The platform admin's operations (tag `admin`): users, teams, templates and capsules of every team, and the
/// cross-team audit log. Every call first checks `Principal.isAdmin`, which `SessionService` reads from the database on
/// every request, so granting, revoking or deactivating takes effect on the target's very next request.
///
/// Capsule operations on another team run the ordinary team operation (`CapsuleService`, `SnapshotService`) with the
/// admin acting for that team (`acting`): same rules, same events; their audit entries carry `metadata.via = "admin"`.
/// Platform-level changes (users, teams, templates) are audited on the platform team with scope `admin`.
public struct AdminService: Sendable {
    let database: Database
    let clock: any WallClock
    let audit: AuditService
    let capsuleService: CapsuleService
    let teamService: TeamService
    let logger: Logger

    /// 403 unless the caller is a platform admin.
    func requireAdmin(_ principal: Principal) throws {
        guard principal.isAdmin else { throw ServiceError.forbidden("this operation is for platform admins") }
    }

    /// The admin acting for `team`: the same session and user, `teamID` replaced, no team role.
    static func acting(_ admin: Principal, team: String) -> Principal {
        var acting = admin
        acting.teamID = team
        acting.role = nil
        acting.viaAdmin = true
        return acting
    }

    // MARK: Users

    public func users(_ principal: Principal) async throws -> [AdminUser] {
        try requireAdmin(principal)
        return try await database.read { sql in try await AdminRepository.users(sql) }.map {
            AdminUser(id: $0.id, email: $0.email, name: $0.name, isAdmin: $0.admin, status: $0.status, createdAt: Date(millis: $0.createdAt))
        }
    }

    /// Activates or deactivates a user. Deactivation ends every session of the user at once; an admin cannot
    /// deactivate themself or the last active admin.
    public func setActive(_ principal: Principal, userID: String, active: Bool) async throws {
        try requireAdmin(principal)
        let now = clock.now().millis
        let lock = database.kind == .postgres
        try await database.transaction { sql in
            let user = try await Self.liveUser(userID, sql)
            if active {
                guard user.userStatus != .active else { return }
                try await UserRepository.setStatus(id: user.id, status: .active, deletedAt: nil, now: now, sql)
            } else {
                guard user.id != principal.userID else { throw ServiceError(.badRequest, "invalid_request", "you cannot deactivate yourself") }
                if user.admin, user.userStatus == .active {
                    try await Self.requireAnotherAdmin(than: user.id, lock: lock, sql)
                }
                try await UserRepository.setStatus(id: user.id, status: .disabled, deletedAt: nil, now: now, sql)
                try await SessionRepository.revokeAll(user: user.id, at: now, sql)
            }
            try await audit.record(.init(team: Migrations.platformTeamID, actor: principal.actor, resourceType: "user", resourceID: user.id,
                                         action: active ? "activate" : "deactivate", scope: "admin", metadata: ["email": user.email]), sql)
        }
    }

    /// Grants or revokes platform admin; the last active admin cannot be revoked.
    public func setAdmin(_ principal: Principal, userID: String, admin: Bool) async throws {
        try requireAdmin(principal)
        let lock = database.kind == .postgres
        try await database.transaction { sql in
            let user = try await Self.liveUser(userID, sql)
            guard user.admin != admin else { return }
            if !admin { try await Self.requireAnotherAdmin(than: user.id, lock: lock, sql) }
            try await UserRepository.setAdmin(id: user.id, admin: admin, sql)
            try await audit.record(.init(team: Migrations.platformTeamID, actor: principal.actor, resourceType: "user", resourceID: user.id,
                                         action: admin ? "grant_admin" : "revoke_admin", scope: "admin", metadata: ["email": user.email]), sql)
        }
    }

    /// `wrenn admin grant EMAIL`: makes an existing account a platform admin from the host, without a session (the
    /// first admin of a production install). Returns the user's id.
    public static func grant(email rawEmail: String, database: Database, clock: any WallClock = SystemWallClock()) async throws -> String {
        let email = try Validation.email(rawEmail)
        let audit = AuditService(database: database, clock: clock)
        return try await database.transaction { sql in
            guard let user = try await UserRepository.find(email: email, sql), user.userStatus != .deleted else {
                throw ServiceError(.notFound, "not_found", "no account with the email \(email)")
            }
            guard !user.admin else { return user.id }
            try await UserRepository.setAdmin(id: user.id, admin: true, sql)
            try await audit.record(.init(team: Migrations.platformTeamID, actor: .system, resourceType: "user", resourceID: user.id,
                                         action: "grant_admin", scope: "admin", metadata: ["email": user.email, "via": "cli"]), sql)
            return user.id
        }
    }

    static func liveUser(_ id: String, _ sql: any SQLDatabase) async throws -> UserRecord {
        guard PrefixedID.parse(id, as: .user) != nil, let user = try await UserRepository.find(id: id, sql), user.userStatus != .deleted else {
            throw ServiceError.notFound("user")
        }
        return user
    }

    static func requireAnotherAdmin(than user: String, lock: Bool, _ sql: any SQLDatabase) async throws {
        guard try await AdminRepository.activeAdminIDs(lock: lock, sql).contains(where: { $0 != user }) else {
            throw ServiceError(.badRequest, "last_admin", "the last active platform admin cannot be removed")
        }
    }

    // MARK: Teams

    public func teams(_ principal: Principal) async throws -> [AdminTeam] {
        try requireAdmin(principal)
        return try await database.read { sql in try await AdminRepository.teams(sql) }.map {
            AdminTeam(id: $0.id, name: $0.name, slug: $0.slug, isByoc: $0.isByoc != 0, createdAt: Date(millis: $0.createdAt),
                      memberCount: Int($0.memberCount), ownerId: $0.ownerId, ownerEmail: $0.ownerEmail, activeCapsules: Int($0.activeCapsules))
        }
    }

    /// Enables or disables BYOC for a team; disabling is refused (409) while the team still has BYOC hosts.
    public func setBYOC(_ principal: Principal, teamID: String, byoc: Bool) async throws {
        try requireAdmin(principal)
        try await database.transaction { sql in
            let team = try await Self.liveTeam(teamID, sql)
            guard (team.isByoc != 0) != byoc else { return }
            if !byoc, try await !HostRepository.list(team: team.id, sql).isEmpty {
                throw ServiceError.conflict("byoc_hosts_exist", "delete the team's BYOC hosts before disabling BYOC")
            }
            try await AdminRepository.setBYOC(team: team.id, byoc: byoc, sql)
            try await audit.record(.init(team: Migrations.platformTeamID, actor: principal.actor, resourceType: "team", resourceID: team.id,
                                         action: "set_byoc", scope: "admin", metadata: ["byoc": byoc ? "true" : "false"]), sql)
        }
    }

    /// Destroys the team's live capsules (the ordinary destroy, as the admin acting for the team), then soft-deletes
    /// the team: its row and slug stay, so the slug is never reused.
    public func deleteTeam(_ principal: Principal, teamID: String) async throws {
        try requireAdmin(principal)
        guard teamID != Migrations.platformTeamID else { throw ServiceError.invalid("the platform team cannot be deleted") }
        let live = try await database.read { sql in
            _ = try await Self.liveTeam(teamID, sql)
            return try await CapsuleRepository.listLive(team: teamID, sql)
        }
        let acting = Self.acting(principal, team: teamID)
        for capsule in live {
            try await capsuleService.destroy(acting, id: capsule.id)
        }
        try await database.transaction { sql in
            _ = try await Self.liveTeam(teamID, sql)
            try await teamService.softDelete(teamID: teamID, actor: acting.actor, sql)
            try await audit.record(.init(team: Migrations.platformTeamID, actor: principal.actor, resourceType: "team", resourceID: teamID,
                                         action: "delete", scope: "admin", metadata: ["capsules_destroyed": "\(live.count)"]), sql)
        }
    }

    static func liveTeam(_ id: String, _ sql: any SQLDatabase) async throws -> TeamRecord {
        guard PrefixedID.parse(id, as: .team) != nil || id == Migrations.platformTeamID,
              let team = try await TeamRepository.find(id: id, sql)
        else { throw ServiceError.notFound("team") }
        return team
    }

    // MARK: Templates

    /// Every template: the platform's and every team's snapshots.
    public func templates(_ principal: Principal) async throws -> [Template] {
        try requireAdmin(principal)
        return try await database.read { sql in try await AdminRepository.templates(sql) }.map(SnapshotService.template)
    }

    /// Deletes a template (the platform's by default, or `team`'s): its files on the host holding it (every host for
    /// a base image), then its record.
    public func deleteTemplate(_ principal: Principal, name: String, team: String?) async throws {
        try requireAdmin(principal)
        let team = team ?? Migrations.platformTeamID
        guard let record = try await database.read({ sql in try await AdminRepository.template(team: team, name: name, sql) }) else {
            throw ServiceError(.notFound, "not_found", "template \"\(name)\" not found")
        }
        let hostName = record.type == "snapshot" ? SnapshotService.hostTemplateName(team: team, name: name) : name
        for agent in try await agents(holding: record) {
            do {
                try await agent.deleteTemplate(hostName)
            } catch let error as ServiceError where error.kind == .notFound {
                // Files already gone on that host.
            }
        }
        try await database.transaction { sql in
            try await TemplateRepository.delete(team: team, name: name, sql)
            try await audit.record(.init(team: Migrations.platformTeamID, actor: principal.actor, resourceType: "template", resourceID: name,
                                         action: "delete", scope: "admin", metadata: ["team_id": team, "type": record.type]), sql)
        }
    }

    /// The agents that may hold a template's files: its host, or every online host for a base image.
    func agents(holding record: TemplateRecord) async throws -> [AgentClient] {
        let hosts = capsuleService.hosts
        if let hostID = record.hostId {
            return (try? await hosts.agent(for: hostID)).map { [$0] } ?? []
        }
        let online = try await database.read { sql in try await HostRepository.list(statuses: ["online"], sql) }
        return [hosts.local].compactMap { $0 } + online.compactMap(hosts.client(for:))
    }

    // MARK: Capsules

    /// The admin acting for the team of capsule `id` (any team); 404 when there is no such capsule.
    func actingPrincipal(_ principal: Principal, capsuleID id: String) async throws -> Principal {
        try requireAdmin(principal)
        guard PrefixedID.parse(id, as: .capsule) != nil,
              let record = try await database.read({ sql in try await CapsuleRepository.find(id: id, sql) })
        else { throw ServiceError.notFound("capsule") }
        return Self.acting(principal, team: record.teamId)
    }

    /// Live capsules of every team, newest first.
    public func capsules(_ principal: Principal) async throws -> [Capsule] {
        try requireAdmin(principal)
        return try await database.read { sql in try await AdminRepository.liveCapsules(sql) }.map(CapsuleService.capsule)
    }

    /// Creates a capsule for `team` (the platform team when nil) as the team's own create would.
    public func createCapsule(_ principal: Principal, _ request: CreateCapsuleRequest, team: String?) async throws -> Capsule {
        try requireAdmin(principal)
        let team = team ?? Migrations.platformTeamID
        _ = try await database.read { sql in try await Self.liveTeam(team, sql) }
        return try await capsuleService.create(Self.acting(principal, team: team), request)
    }

    // MARK: Audit

    public func auditPage(_ principal: Principal, before: Date?, beforeID: String?, limit: Int?) async throws -> AuditLogPage {
        try requireAdmin(principal)
        return try await audit.pageAllTeams(before: before, beforeID: beforeID, limit: limit)
    }
}
