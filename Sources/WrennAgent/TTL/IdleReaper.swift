import Foundation
import Logging
import ServiceLifecycle
import WrennWire

/// Pauses running capsules that stayed idle past their timeout, and notices capsules whose VMM died.
///
/// Every ``AgentServerConfiguration/reaperInterval`` it looks at the runtime's list: a running capsule with a
/// timeout, nothing in flight and no activity for that long is paused and reported as `auto_paused`; a failed
/// auto-pause leaves the capsule in `error` (files kept, never destroyed) and is reported as `error`. A running
/// capsule whose VMM process is gone is reported once as `error` (the crash watcher).
struct IdleReaper: Service {
    let services: AgentServices

    func run() async throws {
        let interval = services.configuration.reaperInterval
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            await sweep()
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }

    /// One pass over the capsules (exposed for tests).
    func sweep() async {
        let capsules = await services.runtime.list()
        for info in capsules where info.state == .running {
            // Re-read after the liveness check: a pause that just stopped the VMM is not a crash.
            if services.crashReason(info) != nil, let fresh = try? await services.runtime.info(info.id),
               fresh.state == .running, fresh.pid == info.pid, let reason = services.crashReason(fresh) {
                if await services.book.markCrashed(info.id, reason: reason) {
                    services.logger.error("capsule VMM is gone", metadata: ["id": "\(info.id)", "reason": "\(reason)"])
                    await services.events.report(AgentCapsuleEvent(
                        kind: "error", capsuleID: info.id, status: .error, reason: reason, at: Date()))
                }
                continue
            }
            guard let record = await services.book.record(info.id), record.timeoutSec > 0 else { continue }
            guard let idle = services.activity.idleTime(info.id), idle >= .seconds(record.timeoutSec) else { continue }
            await autoPause(info.id, idle: idle, timeout: record.timeoutSec)
        }
    }

    private func autoPause(_ id: String, idle: Duration, timeout: Int) async {
        services.logger.info("auto-pausing idle capsule", metadata: ["id": "\(id)", "idle": "\(idle)", "timeout_sec": "\(timeout)"])
        do {
            let info = try await services.runtime.pause(id)
            await services.events.report(AgentCapsuleEvent(
                kind: "auto_paused", capsuleID: id, status: AgentServices.status(of: info.state),
                reason: "idle for \(timeout) s", at: Date()))
        } catch RuntimeError.invalidState, RuntimeError.notFound {
            // Someone else paused, destroyed or is operating on it: nothing to report.
        } catch {
            services.logger.error("auto-pause failed", metadata: ["id": "\(id)", "error": "\(error)"])
            let state = (try? await services.runtime.info(id)).map { AgentServices.status(of: $0.state) } ?? .error
            await services.events.report(AgentCapsuleEvent(
                kind: "error", capsuleID: id, status: state, reason: "auto-pause failed: \(error)", at: Date()))
        }
    }
}
