/// Which host agents this control plane can place capsules on, and how to reach the agent of a capsule's host.
///
/// Today: the one agent named in the configuration (`WRENN_AGENT_URL` + `WRENN_AGENT_TOKEN`, which `wrenn dev`
/// sets up for the agent it runs). The host registry, heartbeats and scheduling across many agents replace this.
public struct HostDirectory: Sendable {
    public static let localHostID = "host-local"
    let local: AgentClient?

    public init(local: AgentClient?) { self.local = local }

    /// An agent with room for a new capsule, or 503 `no_hosts_available`.
    func agentForNewCapsule() throws -> AgentClient {
        guard let local else {
            throw ServiceError(.unavailable, "no_hosts_available", "no host agent is available to run capsules")
        }
        return local
    }

    /// The agent of `hostID`, or 503 `host_unavailable`.
    func agent(for hostID: String?) throws -> AgentClient {
        guard let local, hostID == local.hostID else {
            throw ServiceError(.unavailable, "host_unavailable", "the capsule's host agent is not available")
        }
        return local
    }
}
