import Foundation
import Logging

/// What every data-plane use of a capsule goes through before it reaches the capsule's agent: the running check
/// (404 for another team's capsule, 409 unless running), the team's share of concurrent calls or streams (429 +
/// `Retry-After` beyond it), and one audit entry per call or session — never per frame or chunk — in the capsule's
/// team log (an admin's access carries `metadata.via = "admin"`, so the team sees every admin access into its
/// capsules).
public struct DataPlaneService: Sendable {
    let capsules: CapsuleService
    let audit: AuditService
    let database: Database
    let logger: Logger
    /// HTTP calls (exec, processes, files) per team.
    let calls: ConcurrencyLimiter
    /// WebSocket streams (exec stream, PTY, process stream, port-proxy sockets) per team.
    let streams: ConcurrencyLimiter

    init(capsules: CapsuleService, audit: AuditService, database: Database, settings: EdgeSettings, logger: Logger) {
        self.capsules = capsules
        self.audit = audit
        self.database = database
        self.logger = logger
        calls = ConcurrencyLimiter(perKey: settings.dataPlaneCallsPerTeam, what: "data-plane calls per team",
                                   retryAfter: settings.retryAfterSeconds)
        streams = ConcurrencyLimiter(perKey: settings.streamsPerTeam, what: "capsule streams per team", retryAfter: settings.retryAfterSeconds)
    }

    /// What a use is: a call (bounded) or a stream (lives as long as its socket).
    enum Kind { case call, stream }

    /// The capsule's agent and the permit the use holds until it ends. `action` names it in the audit log
    /// (`exec`, `files.read`, `pty`, …).
    func begin(_ principal: Principal, capsule id: String, action: String, kind: Kind = .call,
               metadata: [String: String] = [:]) async throws -> (agent: AgentClient, permit: Permit) {
        let (_, agent) = try await capsules.requireRunning(principal, id: id)
        let team = try principal.requireTeam()
        let permit = try (kind == .call ? calls : streams).acquire(team)
        await record(principal, team: team, capsule: id, action: action, metadata: metadata)
        return (agent, permit)
    }

    /// One audit entry for a use of capsule `id` of `team`. A failed write is logged, not fatal to the call.
    func record(_ principal: Principal, team: String, capsule id: String, action: String, metadata: [String: String] = [:]) async {
        do {
            try await database.transaction { sql in
                try await audit.record(.init(team: team, actor: principal.actor, resourceType: "capsule", resourceID: id, action: action,
                                             metadata: metadata), sql)
            }
        } catch {
            logger.error("audit entry failed", metadata: ["capsule": "\(id)", "action": "\(action)", "error": "\(error)"])
        }
    }
}
