import AsyncHTTPClient
import Foundation
import Logging
import WrennWire

/// What the routes, the proxy and the background services share.
struct AgentServices: Sendable {
    let configuration: AgentServerConfiguration
    let runtime: any Runtime
    let book: CapsuleBook
    let activity: ActivityTracker
    let events: EventReporter
    let facts: HostFactsProbe
    let metrics: CapsuleMetrics
    let client: HTTPClient
    let logger: Logger

    /// The agent's view of a runtime state (`snapshotting` is brief and the capsule keeps its state after it).
    static func status(of state: CapsuleState) -> AgentCapsuleStatus {
        switch state {
        case .creating: return .starting
        case .running, .snapshotting: return .running
        case .pausing: return .pausing
        case .paused: return .paused
        case .resuming: return .resuming
        case .stopping: return .stopping
        case .error: return .error
        }
    }

    /// A runtime capsule as the contract's `AgentCapsule`.
    func capsule(_ info: CapsuleInfo) async -> AgentCapsule {
        let record = await book.record(info.id)
        let facts = await facts.facts()
        var status = Self.status(of: info.state)
        var error = info.lastError
        if info.state == .running, let crash = await book.crashReason(info.id) {
            status = .error
            error = crash
        }
        return AgentCapsule(
            id: info.id, status: status, template: record?.template ?? info.template, vcpus: info.vcpus,
            memoryMB: info.memoryMiB, diskSizeMB: info.diskMiB, timeoutSec: record?.timeoutSec ?? 0,
            createdAt: record?.createdAt ?? Date(),
            metadata: [
                "kernel_version": facts.kernelVersion, "vmm_version": facts.vmmVersion,
                "agent_version": facts.agentVersion, "envd_version": record?.envdVersion ?? facts.envdVersion,
            ],
            error: status == .error ? (error ?? "unknown error") : nil)
    }

    /// Where to reach a capsule's envd; 409 `invalid_state` unless the capsule runs.
    func envdTarget(_ id: String) async throws -> (host: String, port: Int, token: String) {
        let info = try await runtime.info(id)
        guard info.state == .running else {
            throw AgentError.invalidState("capsule \(id) is \(Self.status(of: info.state).rawValue), not running")
        }
        if let crash = await book.crashReason(id) {
            throw AgentError.invalidState("capsule \(id) is in error: \(crash)")
        }
        return (info.envdHost, info.envdPort, info.accessToken ?? "")
    }

    /// Why a capsule the runtime thinks is running is not, or `nil` if its VMM lives (or the runtime has no PID).
    func crashReason(_ info: CapsuleInfo) -> String? {
        guard let pid = info.pid else { return nil }
        if let qemu = runtime as? QemuMicrovmRuntime {
            return QemuProcess.isAlive(pid, marker: qemu.layout(of: info.id).directory) ? nil : "VMM process \(pid) exited"
        }
        return kill(pid, 0) == 0 || errno == EPERM ? nil : "VMM process \(pid) exited"
    }
}
