import Foundation
import SQLKit
import WrennWire

/// Appends to and pages through the audit log.
///
/// Scopes: `team` entries are visible to every member, `admin` entries to owners and admins, `user` entries (account
/// events such as a password change) only to the user who caused them.
public struct AuditService: Sendable {
    let database: Database
    let clock: any WallClock

    /// One entry to append, inside the caller's transaction so it commits with the change it describes.
    struct Entry {
        var team: String?
        var actor: AuditActor
        var resourceType: String
        var resourceID: String?
        var action: String
        var scope: String = "team"
        var status: String = "success"
        var metadata: [String: String] = [:]
    }

    func record(_ e: Entry, _ sql: any SQLDatabase) async throws {
        var fields = e.metadata
        if e.actor.viaAdmin { fields["via"] = "admin" }
        let metadata = (try? String(decoding: WireCoding.makeEncoder().encode(fields), as: UTF8.self)) ?? "{}"
        try await AuditRepository.insert(AuditRecord(
            id: PrefixedID.make(.auditLog), teamId: e.team, actorType: e.actor.type, actorId: e.actor.id, actorName: e.actor.name,
            resourceType: e.resourceType, resourceId: e.resourceID, action: e.action, scope: e.scope, status: e.status,
            metadata: metadata, createdAt: clock.now().millis), sql)
    }

    /// A page of the caller's team log, newest first.
    public func page(for principal: Principal, before: Date?, beforeID: String?, limit: Int?) async throws -> AuditLogPage {
        guard let team = principal.teamID else { throw ServiceError(.forbidden, "no_team", "you are not a member of any team") }
        var scopes = ["team"]
        if principal.role?.canManage == true { scopes.append("admin") }
        return try await page(team: team, scopes: scopes, actor: principal.userID, before: before, beforeID: beforeID, limit: limit)
    }

    /// A page of every team's log, all scopes, newest first (platform admins).
    func pageAllTeams(before: Date?, beforeID: String?, limit: Int?) async throws -> AuditLogPage {
        try await page(team: nil, scopes: nil, actor: nil, before: before, beforeID: beforeID, limit: limit)
    }

    private func page(team: String?, scopes: [String]?, actor: String?, before: Date?, beforeID: String?, limit: Int?) async throws -> AuditLogPage {
        let limit = limit ?? 50
        guard (1...200).contains(limit) else { throw ServiceError.invalid("limit must be between 1 and 200") }
        guard (before == nil) == (beforeID == nil) else {
            throw ServiceError.invalid("before and before_id must be given together")
        }
        // Nearest millisecond: a parsed `…​.567Z` can be a hair below .567, which `millis` would floor to .566 and skip rows.
        let cursor = before.map { (Int64(($0.timeIntervalSince1970 * 1000).rounded()), beforeID ?? "") }
        let records = try await database.read { sql in
            try await AuditRepository.page(team: team, scopes: scopes, actor: actor, before: cursor, limit: limit + 1, sql)
        }
        let entries = records.prefix(limit).map(Self.entry)
        let next = records.count > limit ? entries.last.map { AuditCursor(before: $0.createdAt, beforeId: $0.id) } : nil
        return AuditLogPage(entries: Array(entries), nextCursor: next)
    }

    static func entry(_ r: AuditRecord) -> AuditLogEntry {
        let metadata = (try? JSONDecoder().decode([String: String].self, from: Data(r.metadata.utf8))) ?? [:]
        return AuditLogEntry(id: r.id, actorType: r.actorType, actorId: r.actorId, actorName: r.actorName,
                             resourceType: r.resourceType, resourceId: r.resourceId, action: r.action, scope: r.scope,
                             status: r.status, metadata: metadata, createdAt: Date(millis: r.createdAt))
    }
}
