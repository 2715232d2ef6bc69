import Foundation
import Logging
import ServiceLifecycle
import WrennWire

/// Heartbeats to the control plane every `interval` with the capsules this agent runs, refreshing the host JWT a day
/// before it expires (or when the control plane answers 401). A 404 means the host was deleted: the agent forgets
/// its credentials and this service returns, which ends the agent (its service group cancels when a member finishes),
/// as in the original; it must be registered again.
struct HeartbeatService: Service {
    let session: HostSession
    let runtime: any Runtime
    let interval: Duration
    let logger: Logger

    func run() async throws {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            if await beat() == .gone { return }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }

    enum Result: Equatable { case ok, retry, gone }

    func beat() async -> Result {
        do {
            try await session.refreshIfNeeded(within: 24 * 3600)
        } catch {
            logger.warning("host token refresh failed", metadata: ["error": "\(error)"])
        }
        let report = HostHeartbeat(capsules: await runtime.list().map { AgentCapsuleSummary(id: $0.id, status: AgentServices.status(of: $0.state)) })
        switch await session.client.heartbeat(hostID: session.hostID, token: session.token, report: report) {
        case .accepted:
            return .ok
        case .unauthorized, .forbidden:
            do {
                try await session.refresh()
                _ = await session.client.heartbeat(hostID: session.hostID, token: session.token, report: report)
            } catch {
                logger.error("heartbeat refused and the token cannot be refreshed", metadata: ["error": "\(error)"])
            }
            return .retry
        case .gone:
            logger.error("the control plane deleted this host: credentials removed, heartbeats stopped", metadata: ["host": "\(session.hostID)"])
            session.forget()
            return .gone
        case .failed(let why):
            logger.warning("heartbeat failed", metadata: ["error": "\(why)"])
            return .retry
        }
    }
}
