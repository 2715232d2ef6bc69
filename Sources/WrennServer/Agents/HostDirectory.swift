import Foundation

/// Which host agents this control plane can place capsules on, and how to reach the agent of a capsule's host.
///
/// Registered hosts live in the `hosts` table (tag `hosts`): the control plane reaches a host at its registered
/// address with a bearer token derived from the server secret (`HostTokens.agentToken`). Besides them, one agent can
/// be named in the configuration (`WRENN_AGENT_URL` + `WRENN_AGENT_TOKEN`, host id `host-local`): a regular host that
/// is always considered online and is used for platform teams when no registered host has room.
public struct HostDirectory: Sendable {
    public static let localHostID = "host-local"
    let local: AgentClient?
    let database: Database?
    let tokens: HostTokens?
    /// Mutual TLS with registered agents (their certificates come from this CA at registration).
    let tls: AgentTLS?

    /// Only the configured agent (no registry).
    public init(local: AgentClient?) {
        self.local = local
        self.database = nil
        self.tokens = nil
        self.tls = nil
    }

    /// The configured agent, if any, and every registered host, reached over mutual TLS with `tls`.
    public init(local: AgentClient?, database: Database, secret: String, tls: AgentTLS) {
        self.local = local
        self.database = database
        self.tokens = HostTokens(secret: secret)
        self.tls = tls
    }

    /// The client of a registered host, when it has an address: HTTPS with the control plane's client certificate,
    /// trusting only agents certified by its CA (plus the per-host bearer token inside).
    func client(for host: HostRecord) -> AgentClient? {
        guard let tokens, let tls, let address = host.address, !address.isEmpty else { return nil }
        return AgentClient(hostID: host.id, baseURL: "https://" + address, token: tokens.agentToken(hostID: host.id),
                           pools: tls.pools, tls: tls.clientConfiguration)
    }

    /// The agent that should run a new capsule of `team` with `demand` (only `requiredHost` when set: the host holding
    /// its snapshot template), or 503 `no_hosts_available` saying why nothing fits.
    func agentForNewCapsule(team: String, demand: Scheduler.Demand, requiredHost: String? = nil) async throws -> AgentClient {
        if let database {
            let (hosts, rows, team) = try await database.read { sql in
                (try await HostRepository.list(statuses: ["online"], sql), try await HostRepository.load(sql),
                 try await TeamRepository.find(id: team, sql))
            }
            let byoc = (team?.isByoc ?? 0) != 0
            if let chosen = Scheduler.choose(hosts: hosts, load: Scheduler.usage(rows), team: team?.id ?? "", teamIsByoc: byoc,
                                             demand: demand, requiredHost: requiredHost),
               let client = client(for: chosen) {
                return client
            }
            if byoc {
                throw ServiceError(.unavailable, "no_hosts_available",
                                   "no online BYOC host of your team has room for \(Self.describe(demand))")
            }
        }
        if let local, requiredHost == nil || requiredHost == local.hostID { return local }
        if let requiredHost {
            throw ServiceError(.unavailable, "no_hosts_available",
                               "the host holding this template (\(requiredHost)) is not online or has no room for \(Self.describe(demand))")
        }
        throw ServiceError(.unavailable, "no_hosts_available", "no online host has room for \(Self.describe(demand))")
    }

    /// The agent of `hostID`, or 503 `host_unavailable` when the host is unknown, not online or has no address.
    func agent(for hostID: String?) async throws -> AgentClient {
        if let local, hostID == local.hostID { return local }
        guard let hostID, let database,
              let host = try await database.read({ sql in try await HostRepository.find(id: hostID, sql) }),
              host.status == "online", let client = client(for: host)
        else {
            throw ServiceError(.unavailable, "host_unavailable", "the capsule's host agent is not available")
        }
        return client
    }

    static func describe(_ d: Scheduler.Demand) -> String {
        "\(d.vcpus) vCPU, \(d.memoryMB) MB memory and \(d.diskMB) MB disk"
    }
}
