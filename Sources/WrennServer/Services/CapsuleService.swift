import Foundation
import Logging
import SQLKit
import WrennWire

/// Capsule lifecycle as the public API presents it: requests answer at once (202) with the transitional status;
/// a `LifecycleWorker` job then drives the host agent and records the outcome, an event and an audit entry.
///
/// Status changes are compare-and-set, so a destroy racing a create never leaves a VM behind, and a failed pause or
/// resume asks the agent what is true instead of assuming the worst: a capsule is never destroyed by a failure.
public struct CapsuleService: Sendable {
    static let defaultTemplate = "minimal"
    /// How often a create chooses a host again after losing the last room on one to a concurrent create.
    static let placementAttempts = 3
    static let limits = (vcpus: 1...16, memoryMB: 128...65_536, diskMB: 512...102_400)

    let database: Database
    let clock: any WallClock
    let audit: AuditService
    let events: EventLog
    let hosts: HostDirectory
    let worker: LifecycleWorker
    let logger: Logger

    // MARK: Reads

    public func list(_ principal: Principal) async throws -> [Capsule] {
        let team = try principal.requireTeam()
        return try await database.read { sql in try await CapsuleRepository.listLive(team: team, sql) }.map(Self.capsule)
    }

    public func get(_ principal: Principal, id: String) async throws -> Capsule {
        Self.capsule(try await record(principal, id: id))
    }

    func record(_ principal: Principal, id: String) async throws -> CapsuleRecord {
        let team = try principal.requireTeam()
        guard PrefixedID.parse(id, as: .capsule) != nil,
              let record = try await database.read({ sql in try await CapsuleRepository.find(id: id, team: team, sql) })
        else { throw ServiceError.notFound("capsule") }
        return record
    }

    /// The capsule, which must be running, and its agent: what every data-plane operation needs (409 otherwise).
    public func requireRunning(_ principal: Principal, id: String) async throws -> (Capsule, AgentClient) {
        let record = try await record(principal, id: id)
        guard record.status == CapsuleStatus.running.rawValue else {
            throw ServiceError.conflict("invalid_state", "capsule \(id) is \(record.status), not running")
        }
        return (Self.capsule(record), try await hosts.agent(for: record.hostId))
    }

    /// Records activity (exec, streams, ping): `last_active_at` = now.
    public func touch(_ id: String) async {
        let now = clock.now().millis
        try? await database.read { sql in try await CapsuleRepository.touch(id: id, at: now, sql) }
    }

    // MARK: Create

    public func create(_ principal: Principal, _ request: CreateCapsuleRequest) async throws -> Capsule {
        let team = try principal.requireTeam()
        let templateName = request.template?.trimmingCharacters(in: .whitespaces) ?? Self.defaultTemplate
        var vcpus = request.vcpus ?? 1
        var memory = request.memoryMB ?? 512
        let disk = request.diskSizeMB ?? 5120
        var timeout = request.timeoutSec ?? 0
        guard Self.limits.vcpus.contains(vcpus) else { throw ServiceError.invalid("vcpus: must be \(Self.limits.vcpus.lowerBound)–\(Self.limits.vcpus.upperBound)") }
        guard Self.limits.memoryMB.contains(memory) else {
            throw ServiceError.invalid("memory_mb: must be \(Self.limits.memoryMB.lowerBound)–\(Self.limits.memoryMB.upperBound)")
        }
        guard Self.limits.diskMB.contains(disk) else {
            throw ServiceError.invalid("disk_size_mb: must be \(Self.limits.diskMB.lowerBound)–\(Self.limits.diskMB.upperBound)")
        }
        guard timeout >= 0 else { throw ServiceError.invalid("timeout_sec: must be 0 or more") }
        if timeout > 0 && timeout < 60 { timeout = 60 }
        guard TemplateRules.isSafeName(templateName) else { throw ServiceError.invalid("template: not a valid template name") }
        guard let template = try await database.read({ sql in try await TemplateRepository.visible(name: templateName, team: team, sql) }) else {
            throw ServiceError(.notFound, "not_found", "template \"\(templateName)\" not found")
        }
        if template.type == "snapshot" {
            // A snapshot carries its memory image: it decides the machine's shape.
            vcpus = Int(template.vcpus ?? Int64(vcpus))
            memory = Int(template.memoryMb ?? Int64(memory))
        }
        let demand = Scheduler.Demand(vcpus: Int64(vcpus), memoryMB: Int64(memory), diskMB: Int64(disk))
        // The host is chosen from a snapshot of the load; the insert re-checks that host under its row lock, and a
        // create that lost a race for the last room chooses again.
        var placed: (agent: AgentClient, record: CapsuleRecord)?
        for _ in 0..<Self.placementAttempts where placed == nil {
            let agent = try await hosts.agentForNewCapsule(team: team, demand: demand,
                                                           requiredHost: template.type == "snapshot" ? template.hostId : nil)
            let now = clock.now()
            let record = CapsuleRecord(id: PrefixedID.make(.capsule), teamId: team, hostId: agent.hostID, template: templateName,
                                       status: CapsuleStatus.starting.rawValue, vcpus: Int64(vcpus), memoryMb: Int64(memory),
                                       diskSizeMb: Int64(disk), timeoutSec: Int64(timeout), createdAt: now.millis, startedAt: nil,
                                       lastActiveAt: nil, lastUpdated: now.millis, metadata: "{}", error: nil)
            let stored = try await database.transaction { sql -> Bool in
                // The configured local agent is not capacity-checked (it has no hosts row: it is the fallback).
                if agent.hostID != HostDirectory.localHostID,
                   try await !HostRepository.stillFits(host: agent.hostID, demand: demand, sql) { return false }
                try await CapsuleRepository.insert(record, sql)
                try await audit.record(.init(team: team, actor: principal.actor, resourceType: "capsule", resourceID: record.id,
                                             action: "create", metadata: ["template": templateName]), sql)
                return true
            }
            if stored { placed = (agent, record) }
        }
        guard let (agent, record) = placed else {
            throw ServiceError(.unavailable, "no_hosts_available", "no online host has room for \(HostDirectory.describe(demand))")
        }
        let actor = principal.actor
        let hostTemplate = template.type == "snapshot" ? SnapshotService.hostTemplateName(team: template.teamId, name: templateName) : templateName
        let agentRequest = AgentCreateCapsule(id: record.id, template: hostTemplate, vcpus: vcpus, memoryMB: memory,
                                              diskSizeMB: disk, timeoutSec: timeout)
        worker.submit { await runCreate(agentRequest, agent: agent, team: team, actor: actor) }
        return Self.capsule(record)
    }

    func runCreate(_ request: AgentCreateCapsule, agent: AgentClient, team: String, actor: AuditActor) async {
        let id = request.id
        do {
            let created = try await agent.create(request)
            let metadata = Self.encodeMetadata(created.metadata)
            let now = clock.now()
            let stillWanted = try await database.transaction { sql -> Bool in
                guard try await CapsuleRepository.transition(id: id, from: ["starting"], to: "running", at: now.millis, sql) else { return false }
                try await CapsuleRepository.markRunning(id: id, metadata: metadata, at: now.millis, firstStart: true, sql)
                let capsule = try await CapsuleRepository.find(id: id, sql).map(Self.capsule)
                try await events.append(EventLog.capsuleEvent("capsule.create", outcome: "success", capsule: capsule, id: id, actor: actor, at: now),
                                        team: team, sql)
                return true
            }
            if !stillWanted {
                // Destroyed while it was being created: the destroy may have missed the VM, so remove it here.
                try? await agent.destroy(id)
            }
        } catch {
            let message = (error as? ServiceError)?.message ?? "\(error)"
            logger.error("capsule create failed", metadata: ["capsule": "\(id)", "error": "\(message)"])
            try? await agent.destroy(id) // leave nothing half-created on the host
            let now = clock.now()
            try? await database.transaction { sql in
                guard try await CapsuleRepository.transition(id: id, from: ["starting"], to: "error", at: now.millis, sql) else { return }
                try await CapsuleRepository.setStatus(id: id, status: "error", error: message, at: now.millis, sql)
                let capsule = try await CapsuleRepository.find(id: id, sql).map(Self.capsule)
                try await events.append(EventLog.capsuleEvent("capsule.create", outcome: "error", capsule: capsule, id: id, actor: actor,
                                                              error: message, at: now), team: team, sql)
            }
        }
    }

    // MARK: Destroy

    /// Starts destroying the capsule (202). Destroying a stopped capsule is a no-op.
    public func destroy(_ principal: Principal, id: String) async throws {
        let record = try await record(principal, id: id)
        let now = clock.now()
        let live: [String] = CapsuleStatus.allCases.filter { $0.isLive && $0 != .stopping }.map(\.rawValue) + ["error"]
        let moved = try await database.transaction { sql -> Bool in
            guard try await CapsuleRepository.transition(id: id, from: live, to: "stopping", at: now.millis, sql) else { return false }
            try await audit.record(.init(team: record.teamId, actor: principal.actor, resourceType: "capsule", resourceID: id, action: "destroy"), sql)
            return true
        }
        guard moved else { return }
        let actor = principal.actor
        let agent = try? await hosts.agent(for: record.hostId)
        worker.submit { await runDestroy(id: id, team: record.teamId, agent: agent, actor: actor) }
    }

    func runDestroy(id: String, team: String, agent: AgentClient?, actor: AuditActor) async {
        var failure: String?
        if let agent {
            do {
                try await agent.destroy(id)
            } catch let error as ServiceError where error.kind == .notFound {
                // Already gone on the host.
            } catch {
                failure = (error as? ServiceError)?.message ?? "\(error)"
            }
        }
        let now = clock.now()
        let finalStatus = failure == nil ? "stopped" : "error"
        let failureText = failure
        try? await database.transaction { sql in
            try await CapsuleRepository.setStatus(id: id, status: finalStatus, error: failureText, at: now.millis, sql)
            let capsule = try await CapsuleRepository.find(id: id, sql).map(Self.capsule)
            try await events.append(EventLog.capsuleEvent("capsule.destroy", outcome: failureText == nil ? "success" : "error", capsule: capsule,
                                                          id: id, actor: actor, error: failureText, at: now), team: team, sql)
        }
    }

    // MARK: Pause and resume

    public func pause(_ principal: Principal, id: String) async throws -> Capsule {
        try await beginTransition(principal, id: id, from: "running", to: "pausing", action: "pause") { record, agent, actor in
            await runPauseOrResume(record: record, agent: agent, actor: actor, pausing: true)
        }
    }

    public func resume(_ principal: Principal, id: String) async throws -> Capsule {
        try await beginTransition(principal, id: id, from: "paused", to: "resuming", action: "resume") { record, agent, actor in
            await runPauseOrResume(record: record, agent: agent, actor: actor, pausing: false)
        }
    }

    func beginTransition(_ principal: Principal, id: String, from: String, to: String, action: String,
                         job: @escaping @Sendable (CapsuleRecord, AgentClient, AuditActor) async -> Void) async throws -> Capsule {
        let record = try await record(principal, id: id)
        let agent = try await hosts.agent(for: record.hostId)
        let now = clock.now()
        let updated = try await database.transaction { sql -> CapsuleRecord? in
            guard try await CapsuleRepository.transition(id: id, from: [from], to: to, at: now.millis, sql) else { return nil }
            try await audit.record(.init(team: record.teamId, actor: principal.actor, resourceType: "capsule", resourceID: id, action: action), sql)
            return try await CapsuleRepository.find(id: id, sql)
        }
        guard let updated else {
            throw ServiceError.conflict("invalid_state", "capsule \(id) is \(record.status), not \(from)")
        }
        let actor = principal.actor
        worker.submit { await job(updated, agent, actor) }
        return Self.capsule(updated)
    }

    func runPauseOrResume(record: CapsuleRecord, agent: AgentClient, actor: AuditActor, pausing: Bool) async {
        let id = record.id
        let kind = pausing ? "capsule.pause" : "capsule.resume"
        let transitional = pausing ? "pausing" : "resuming"
        do {
            let result = pausing ? try await agent.pause(id) : try await agent.resume(id)
            let now = clock.now()
            try await database.transaction { sql in
                if pausing {
                    try await CapsuleRepository.setStatus(id: id, status: "paused", error: nil, at: now.millis, sql)
                } else {
                    try await CapsuleRepository.markRunning(id: id, metadata: Self.encodeMetadata(result.metadata), at: now.millis, firstStart: false, sql)
                }
                let capsule = try await CapsuleRepository.find(id: id, sql).map(Self.capsule)
                try await events.append(EventLog.capsuleEvent(kind, outcome: "success", capsule: capsule, id: id, actor: actor, at: now),
                                        team: record.teamId, sql)
            }
        } catch {
            let message = (error as? ServiceError)?.message ?? "\(error)"
            logger.error("capsule \(pausing ? "pause" : "resume") failed", metadata: ["capsule": "\(id)", "error": "\(message)"])
            // Ask the agent what is true now; never assume the capsule is lost.
            let truth = try? await agent.capsule(id)
            let status = truth.map { Self.publicStatus($0.status) } ?? "error"
            let now = clock.now()
            try? await database.transaction { sql in
                guard try await CapsuleRepository.transition(id: id, from: [transitional], to: status, at: now.millis, sql) else { return }
                try await CapsuleRepository.setStatus(id: id, status: status, error: message, at: now.millis, sql)
                let capsule = try await CapsuleRepository.find(id: id, sql).map(Self.capsule)
                try await events.append(EventLog.capsuleEvent(kind, outcome: "error", capsule: capsule, id: id, actor: actor, error: message, at: now),
                                        team: record.teamId, sql)
            }
        }
    }

    /// Resets the agent's idle timer and `last_active_at`.
    public func ping(_ principal: Principal, id: String) async throws {
        let (_, agent) = try await requireRunning(principal, id: id)
        try await agent.ping(id)
        await touch(id)
    }

    static let metricRanges: Set<String> = ["5m", "10m", "1h", "2h", "6h", "12h", "24h"]

    /// The capsule's CPU, memory and disk series from its agent (running or paused; 404 otherwise).
    public func metrics(_ principal: Principal, id: String, range: String?) async throws -> CapsuleMetrics {
        let range = range ?? "10m"
        guard Self.metricRanges.contains(range) else { throw ServiceError.invalid("range: must be one of 5m, 10m, 1h, 2h, 6h, 12h, 24h") }
        let record = try await record(principal, id: id)
        guard ["running", "paused"].contains(record.status) else {
            throw ServiceError(.notFound, "not_found", "no metrics for a capsule that is \(record.status)")
        }
        let series = try await hosts.agent(for: record.hostId).metrics(id, range: range)
        return CapsuleMetrics(sandboxID: id, range: range, points: series.points.map {
            MetricPoint(timestampUnix: Int64($0.timestamp.timeIntervalSince1970), cpuPct: $0.cpuPercent, memBytes: $0.memoryBytes,
                        diskBytes: $0.diskBytes)
        })
    }

    // MARK: Recovery

    /// At start: capsules left in a transitional state by a previous run are settled from the agent's truth.
    public func reconcileTransitional() async {
        let transitional = ["starting", "pausing", "resuming", "stopping"]
        guard let records = try? await database.read({ sql in try await CapsuleRepository.list(statuses: transitional, sql) }) else { return }
        for record in records {
            let agent = try? await hosts.agent(for: record.hostId)
            let truth: AgentCapsule?
            do {
                truth = try await agent?.capsule(record.id)
            } catch let error as ServiceError where error.kind == .notFound {
                truth = nil
            } catch {
                continue // agent unreachable: leave it for the next start or the host monitor
            }
            let status: String
            if record.status == "stopping" {
                if truth != nil { try? await agent?.destroy(record.id) }
                status = "stopped"
            } else {
                status = truth.map { Self.publicStatus($0.status) } ?? "error"
            }
            let now = clock.now().millis
            try? await database.read { sql in
                try await CapsuleRepository.setStatus(id: record.id, status: status,
                                                      error: status == "error" ? "interrupted by a control plane restart" : nil, at: now, sql)
            }
            logger.notice("reconciled capsule", metadata: ["capsule": "\(record.id)", "from": "\(record.status)", "to": "\(status)"])
        }
    }

    /// Applies a change the agent made on its own (auto-pause, crash, stop).
    public func applyAgentEvent(_ event: AgentCapsuleEvent, hostID: String) async throws {
        let now = clock.now()
        try await database.transaction { sql in
            guard let record = try await CapsuleRepository.find(id: event.capsuleID, sql), record.hostId == hostID else {
                throw ServiceError.notFound("capsule")
            }
            let to = Self.publicStatus(event.status)
            guard to != record.status else { return }
            try await CapsuleRepository.setStatus(id: record.id, status: to, error: event.reason, at: now.millis, sql)
            let capsule = try await CapsuleRepository.find(id: record.id, sql).map(Self.capsule)
            var metadata = ["from": record.status, "to": to]
            if let reason = event.reason { metadata["reason"] = reason } else if event.kind == "auto_paused" { metadata["reason"] = "ttl_expired" }
            try await events.append(EventLog.capsuleEvent("capsule.state.changed", outcome: nil, capsule: capsule, id: record.id,
                                                          actor: .system, metadata: metadata, at: now), team: record.teamId, sql)
            try await audit.record(.init(team: record.teamId, actor: .system, resourceType: "capsule", resourceID: record.id,
                                         action: event.kind, metadata: metadata), sql)
        }
    }

    // MARK: Mapping

    static func publicStatus(_ status: AgentCapsuleStatus) -> String {
        CapsuleStatus(rawValue: status.rawValue)?.rawValue ?? "error"
    }

    static func encodeMetadata(_ metadata: [String: String]) -> String {
        (try? String(decoding: WireCoding.makeEncoder().encode(metadata), as: UTF8.self)) ?? "{}"
    }

    static func capsule(_ r: CapsuleRecord) -> Capsule {
        let metadata = (try? JSONDecoder().decode([String: String].self, from: Data(r.metadata.utf8))) ?? [:]
        return Capsule(id: r.id, status: CapsuleStatus(rawValue: r.status) ?? .error, template: r.template, vcpus: Int(r.vcpus),
                       memoryMB: Int(r.memoryMb), timeoutSec: Int(r.timeoutSec), diskSizeMB: Int(r.diskSizeMb),
                       createdAt: Date(millis: r.createdAt), startedAt: r.startedAt.map(Date.init(millis:)),
                       lastActiveAt: r.lastActiveAt.map(Date.init(millis:)), lastUpdated: Date(millis: r.lastUpdated),
                       metadata: metadata.isEmpty ? nil : metadata)
    }
}

/// Template and snapshot naming rules (reference §3: SafeName).
enum TemplateRules {
    /// `^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$`
    static func isSafeName(_ name: String) -> Bool {
        let chars = Array(name.utf8)
        guard (1...64).contains(chars.count) else { return false }
        func alnum(_ c: UInt8) -> Bool { (48...57).contains(c) || (65...90).contains(c) || (97...122).contains(c) }
        guard alnum(chars[0]) else { return false }
        return chars.dropFirst().allSatisfy { alnum($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
    }
}
