import Foundation
import Logging
import SQLKit
import WrennWire

/// Compares the database with what a host's agent really has, and makes the database agree.
///
/// Only settled capsules are touched (`running`, `paused`, `missing`) and only if their row did not change while the
/// agent was being asked, so a create or pause in flight is never overtaken. A capsule the agent no longer has
/// becomes `stopped` (reason `gone_from_host`); one it has in another state takes that state (a `missing` capsule of
/// a host that came back returns to `running`/`paused`). Capsules the agent has but the database does not know
/// are reported (log, return value), never destroyed.
public struct HostReconciler: Sendable {
    let database: Database
    let clock: any WallClock
    let events: EventLog
    let directory: HostDirectory
    let logger: Logger

    /// What one pass changed.
    public struct Report: Sendable, Equatable {
        public var stopped: [String] = []
        public var restored: [String] = []
        public var unknown: [String] = []
    }

    static let settled: Set<String> = ["running", "paused", "missing"]

    /// Reconciles one online host; throws when its agent cannot be asked (the monitor's heartbeat check covers that).
    @discardableResult
    public func reconcile(hostID: String) async throws -> Report {
        let asked = clock.now().millis
        guard let host = try await database.read({ sql in try await HostRepository.find(id: hostID, sql) }),
              host.status == HostStatus.online.rawValue, let agent = directory.client(for: host)
        else { return Report() }
        let truth = Dictionary(try await agent.capsules().map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let now = clock.now()
        let report = try await database.transaction { sql -> Report in
            var report = Report()
            let rows = try await sql.raw("""
                SELECT \(unsafeRaw: CapsuleRepository.columns) FROM capsules WHERE host_id = \(bind: hostID)
                AND status NOT IN ('stopped', 'error')
                """).rows(CapsuleRecord.self)
            for row in rows where Self.settled.contains(row.status) && row.lastUpdated <= asked {
                let to: String
                let reason: String
                if let capsule = truth[row.id] {
                    to = CapsuleService.publicStatus(capsule.status)
                    reason = row.status == "missing" ? "host_recovered" : "reconciled"
                    guard to != row.status else { continue }
                    report.restored.append(row.id)
                } else {
                    to = "stopped"
                    reason = "gone_from_host"
                    report.stopped.append(row.id)
                }
                try await CapsuleRepository.setStatus(id: row.id, status: to, error: to == "stopped" ? "capsule no longer exists on its host" : nil,
                                                      at: now.millis, sql)
                let capsule = try await CapsuleRepository.find(id: row.id, sql).map(CapsuleService.capsule)
                try await events.append(EventLog.capsuleEvent("capsule.state.changed", outcome: nil, capsule: capsule, id: row.id, actor: .system,
                                                              metadata: ["from": row.status, "to": to, "reason": reason], at: now),
                                        team: row.teamId, sql)
            }
            let known = Set(rows.map(\.id))
            for id in truth.keys.sorted() where !known.contains(id) {
                let record = try await CapsuleRepository.find(id: id, sql)
                if record == nil || record?.hostId != hostID || record?.status == "stopped" { report.unknown.append(id) }
            }
            return report
        }
        for id in report.unknown {
            logger.warning("agent runs a capsule the database does not know; left alone", metadata: ["host": "\(hostID)", "capsule": "\(id)"])
        }
        if !report.stopped.isEmpty || !report.restored.isEmpty {
            logger.notice("reconciled host", metadata: ["host": "\(hostID)", "stopped": "\(report.stopped)", "restored": "\(report.restored)"])
        }
        return report
    }
}
