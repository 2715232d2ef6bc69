import Foundation
import Logging
import SQLKit
import WrennWire

/// Snapshot templates: a live snapshot of a running capsule becomes a team template that new capsules start from.
/// Platform templates (`minimal`) are visible to every team and cannot be deleted or shadowed by one.
public struct SnapshotService: Sendable {
    let database: Database
    let clock: any WallClock
    let audit: AuditService
    let events: EventLog
    let capsules: CapsuleService

    /// Synchronous live snapshot (the seed contract: `201 Template`); the capsule keeps running.
    /// `overwrite` (the SDK's `?overwrite=true`) replaces the team's snapshot of the same name.
    public func create(_ principal: Principal, _ request: CreateSnapshotRequest, overwrite: Bool) async throws -> Template {
        let team = try principal.requireTeam()
        let name = request.name?.trimmingCharacters(in: .whitespaces).nilIfEmpty ?? "template-" + Secrets.randomHex(bytes: 4)
        guard TemplateRules.isSafeName(name) else {
            throw ServiceError.invalid("name: 1–64 characters of letters, digits, '.', '_' or '-', starting with a letter or digit")
        }
        let (capsule, agent) = try await capsules.requireRunning(principal, id: request.sandboxID)
        let existing = try await database.read { sql in try await TemplateRepository.visible(name: name, team: team, sql) }
        if let existing {
            if existing.teamId != team {
                throw ServiceError.conflict("name_reserved", "\"\(name)\" is a platform template name")
            }
            guard overwrite else { throw ServiceError.conflict("template_name_taken", "a snapshot named \"\(name)\" already exists") }
            try? await agent.deleteTemplate(Self.hostTemplateName(team: team, name: name))
            try await database.read { sql in try await TemplateRepository.delete(team: team, name: name, sql) }
        }
        let made = try await agent.snapshot(capsule.id, name: Self.hostTemplateName(team: team, name: name))
        let now = clock.now()
        let record = TemplateRecord(teamId: team, name: name, type: "snapshot", vcpus: Int64(made.vcpus), memoryMb: Int64(made.memoryMB),
                                    sizeBytes: made.sizeBytes, hostId: agent.hostID, createdAt: now.millis,
                                    metadata: CapsuleService.encodeMetadata(["source_capsule": capsule.id]))
        do {
            try await database.transaction { sql in
                try await TemplateRepository.insert(record, sql)
                try await audit.record(.init(team: team, actor: principal.actor, resourceType: "template", resourceID: name,
                                             action: "snapshot_create", metadata: ["capsule": capsule.id]), sql)
                try await events.append(SSEEvent(event: "template.snapshot.create", outcome: "success", resource: .init(id: name, type: "template"),
                                                 actor: .init(type: principal.actor.type, id: principal.actor.id, name: principal.actor.name),
                                                 metadata: ["capsule_id": capsule.id], timestamp: now), team: team, sql)
            }
        } catch {
            try? await agent.deleteTemplate(Self.hostTemplateName(team: team, name: name)) // a concurrent create won the name
            throw ServiceError.conflict("template_name_taken", "a snapshot named \"\(name)\" already exists")
        }
        return Self.template(record)
    }

    public func list(_ principal: Principal, type: String?) async throws -> [Template] {
        let team = try principal.requireTeam()
        if let type, type != "base", type != "snapshot" { throw ServiceError.invalid("type: must be \"base\" or \"snapshot\"") }
        return try await database.read { sql in try await TemplateRepository.list(team: team, type: type, sql) }.map(Self.template)
    }

    public func delete(_ principal: Principal, name: String) async throws {
        let team = try principal.requireTeam()
        guard let record = try await database.read({ sql in try await TemplateRepository.visible(name: name, team: team, sql) }) else {
            throw ServiceError(.notFound, "not_found", "template \"\(name)\" not found")
        }
        guard record.teamId == team else { throw ServiceError.forbidden("platform templates cannot be deleted") }
        if let agent = try? await capsules.hosts.agent(for: record.hostId) {
            do {
                try await agent.deleteTemplate(Self.hostTemplateName(team: team, name: name))
            } catch let error as ServiceError where error.kind == .notFound {
                // Files already gone.
            }
        }
        let now = clock.now()
        try await database.transaction { sql in
            try await TemplateRepository.delete(team: team, name: name, sql)
            try await audit.record(.init(team: team, actor: principal.actor, resourceType: "template", resourceID: name, action: "snapshot_delete"), sql)
            try await events.append(SSEEvent(event: "template.snapshot.delete", outcome: "success", resource: .init(id: name, type: "template"),
                                             actor: .init(type: principal.actor.type, id: principal.actor.id, name: principal.actor.name),
                                             timestamp: now), team: team, sql)
        }
    }

    /// Team snapshots live on hosts under a name that cannot collide across teams.
    static func hostTemplateName(team: String, name: String) -> String {
        "\(team.dropFirst("team-".count).prefix(12))-\(name)"
    }

    static func template(_ r: TemplateRecord) -> Template {
        let metadata = (try? JSONDecoder().decode([String: String].self, from: Data(r.metadata.utf8))) ?? [:]
        return Template(name: r.name, type: r.type, vcpus: r.vcpus.map(Int.init), memoryMB: r.memoryMb.map(Int.init), sizeBytes: r.sizeBytes,
                        createdAt: Date(millis: r.createdAt), platform: r.teamId == Migrations.platformTeamID,
                        metadata: metadata.isEmpty ? nil : metadata)
    }
}

extension String {
    var nilIfEmpty: String? { isEmpty ? nil : self }
}
