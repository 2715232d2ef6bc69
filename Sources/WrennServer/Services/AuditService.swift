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
        let metadata = (try? String(decoding: WireCoding.makeEncoder().encode(e.metadata), as: UTF8.self)) ?? "{}"
        try await AuditRepository.insert(AuditRecord(
            id: PrefixedID.make(.auditLog), teamId: e.team, actorType: e.actor.type, actorId: e.actor.id, actorName: e.actor.name,
            resourceType: e.resourceType, resourceId: e.resourceID, action: e.action, scope: e.scope, status: e.status,
            metadata: metadata, createdAt: clock.now().millis), sql)
    }

    /// A page of the caller's team log, newest first.
    public func page(for principal: Principal, before: Date?, beforeID: String?, limit: Int?) async throws -> AuditLogPage {
        guard let team = principal.teamID else { throw ServiceError(.forbidden, "no_team", "you are not a member of any team") }
        let limit = limit ?? 50
        guard (1...200).contains(limit) else { throw ServiceError.invalid("limit must be between 1 and 200") }
        guard (before == nil) == (beforeID == nil) else {
            throw ServiceError.invalid("before and before_id must be given together")
        }
        var scopes = ["team"]
        if principal.role?.canManage == true { scopes.append("admin") }
        let visibleScopes = scopes
        let cursor = before.map { ($0.millis, beforeID ?? "") }
        let records = try await database.read { sql in
            try await AuditRepository.page(team: team, scopes: visibleScopes, actor: principal.userID, before: cursor, limit: limit + 1, sql)
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
