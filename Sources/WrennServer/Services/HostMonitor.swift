import Foundation
import Logging
import ServiceLifecycle
import WrennWire

/// Timing of the host monitor (injectable: tests run it with short intervals or call `sweep()` themselves).
public struct HostMonitorSettings: Sendable {
    /// How often hosts are checked and reconciled.
    public var interval: Duration
    /// A host whose last heartbeat is older than this is `unreachable`.
    public var heartbeatTimeout: TimeInterval
    public init(interval: Duration = .seconds(15), heartbeatTimeout: TimeInterval = 90) {
        self.interval = interval
        self.heartbeatTimeout = heartbeatTimeout
    }
}

/// Watches registered hosts: an `online` host without a heartbeat for `heartbeatTimeout` becomes `unreachable`
/// (`host.down`) and its running capsules `missing` — not stopped: their files are still on the host. Every pass
/// also reconciles each online host with its agent (`HostReconciler`). A host that heartbeats again is brought
/// back by `HostService.heartbeat` (`host.up`, then reconciliation restores its capsules' real states).
public struct HostMonitor: Service {
    let database: Database
    let clock: any WallClock
    let audit: AuditService
    let events: EventLog
    let reconciler: HostReconciler
    let settings: HostMonitorSettings
    let logger: Logger

    public func run() async throws {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: settings.interval) }
            guard !Task.isCancelled, !Task.isShuttingDownGracefully else { break }
            await sweep()
        }
    }

    /// One pass: mark stale hosts down, then reconcile the online ones. Returns the hosts marked down.
    @discardableResult
    public func sweep() async -> [String] {
        let down = (try? await markStaleHosts()) ?? []
        let online = (try? await database.read { sql in try await HostRepository.list(statuses: [HostStatus.online.rawValue], sql) }) ?? []
        for host in online {
            do {
                try await reconciler.reconcile(hostID: host.id)
            } catch {
                logger.debug("reconcile skipped: agent not answering", metadata: ["host": "\(host.id)", "error": "\(error)"])
            }
        }
        return down
    }

    func markStaleHosts() async throws -> [String] {
        let now = clock.now()
        let cutoff = now.millis - Int64(settings.heartbeatTimeout * 1000)
        return try await database.transaction { sql -> [String] in
            var down: [String] = []
            for host in try await HostRepository.list(statuses: [HostStatus.online.rawValue], sql) where (host.lastHeartbeatAt ?? 0) < cutoff {
                try await HostRepository.setStatus(id: host.id, status: HostStatus.unreachable.rawValue, at: now.millis, sql)
                try await HostEvents.record(up: false, host: host, audit: audit, events: events, at: now, sql)
                let capsules = try await sql.raw("""
                    SELECT \(unsafeRaw: CapsuleRepository.columns) FROM capsules WHERE host_id = \(bind: host.id) AND status = 'running'
                    """).rows(CapsuleRecord.self)
                for row in capsules {
                    try await CapsuleRepository.setStatus(id: row.id, status: "missing", error: "host unreachable", at: now.millis, sql)
                    let capsule = try await CapsuleRepository.find(id: row.id, sql).map(CapsuleService.capsule)
                    try await events.append(EventLog.capsuleEvent("capsule.state.changed", outcome: nil, capsule: capsule, id: row.id,
                                                                  actor: .system, metadata: ["from": "running", "to": "missing", "reason": "host_failure"],
                                                                  at: now), team: row.teamId, sql)
                }
                down.append(host.id)
                logger.warning("host unreachable", metadata: ["host": "\(host.id)", "capsules_missing": "\(capsules.count)"])
            }
            return down
        }
    }
}
