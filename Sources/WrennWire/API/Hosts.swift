import Foundation

// Wire types of tag `hosts` (host registry, registration, tokens, heartbeats), shared by the control plane and
// the host agent's registration client. JSON keys are snake_case as the spec spells them.

/// `Host.status`.
public enum HostStatus: String, Codable, Sendable, CaseIterable {
    case pending, online, offline, draining, unreachable
}

/// `Host` (named so it does not clash with Foundation.Host).
public struct HostResource: Codable, Sendable, Equatable {
    public var id: String
    /// `regular` (shared platform host) or `byoc` (belongs to `teamID`).
    public var type: String
    public var teamID: String?
    public var provider: String?
    public var availabilityZone: String?
    public var arch: String?
    public var cpuCores: Int?
    public var memoryMB: Int?
    public var diskGB: Int?
    public var address: String?
    public var status: HostStatus
    public var lastHeartbeatAt: Date?
    public var createdBy: String?
    public var createdAt: Date
    public var updatedAt: Date

    public init(id: String, type: String, teamID: String?, provider: String?, availabilityZone: String?, arch: String?,
                cpuCores: Int?, memoryMB: Int?, diskGB: Int?, address: String?, status: HostStatus, lastHeartbeatAt: Date?,
                createdBy: String?, createdAt: Date, updatedAt: Date) {
        self.id = id; self.type = type; self.teamID = teamID; self.provider = provider; self.availabilityZone = availabilityZone
        self.arch = arch; self.cpuCores = cpuCores; self.memoryMB = memoryMB; self.diskGB = diskGB; self.address = address
        self.status = status; self.lastHeartbeatAt = lastHeartbeatAt; self.createdBy = createdBy; self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    enum CodingKeys: String, CodingKey {
        case id, type, teamID = "team_id", provider, availabilityZone = "availability_zone", arch, cpuCores = "cpu_cores"
        case memoryMB = "memory_mb", diskGB = "disk_gb", address, status, lastHeartbeatAt = "last_heartbeat_at"
        case createdBy = "created_by", createdAt = "created_at", updatedAt = "updated_at"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(type, forKey: .type)
        try c.encode(teamID, forKey: .teamID) // nullable fields as explicit nulls
        try c.encode(provider, forKey: .provider)
        try c.encode(availabilityZone, forKey: .availabilityZone)
        try c.encode(arch, forKey: .arch)
        try c.encode(cpuCores, forKey: .cpuCores)
        try c.encode(memoryMB, forKey: .memoryMB)
        try c.encode(diskGB, forKey: .diskGB)
        try c.encode(address, forKey: .address)
        try c.encode(status, forKey: .status)
        try c.encode(lastHeartbeatAt, forKey: .lastHeartbeatAt)
        try c.encodeIfPresent(createdBy, forKey: .createdBy)
        try c.encode(createdAt, forKey: .createdAt)
        try c.encode(updatedAt, forKey: .updatedAt)
    }
}

/// `CreateHostRequest`.
public struct CreateHostRequest: Codable, Sendable {
    public var type: String
    public var teamID: String?
    public var provider: String?
    public var availabilityZone: String?
    public init(type: String, teamID: String? = nil, provider: String? = nil, availabilityZone: String? = nil) {
        self.type = type; self.teamID = teamID; self.provider = provider; self.availabilityZone = availabilityZone
    }
    enum CodingKeys: String, CodingKey { case type, teamID = "team_id", provider, availabilityZone = "availability_zone" }
}

/// `CreateHostResponse` (also the answer of `POST /v1/hosts/{id}/token`).
public struct CreateHostResponse: Codable, Sendable {
    public var host: HostResource
    public var registrationToken: String
    public init(host: HostResource, registrationToken: String) { self.host = host; self.registrationToken = registrationToken }
    enum CodingKeys: String, CodingKey { case host, registrationToken = "registration_token" }
}

/// `RegisterHostRequest`.
public struct RegisterHostRequest: Codable, Sendable {
    public var token: String
    public var arch: String?
    public var cpuCores: Int?
    public var memoryMB: Int?
    public var diskGB: Int?
    public var address: String
    /// PEM certificate signing request for the agent's TLS key (beyond the contract; required): the control plane's
    /// CA answers with the agent's certificate, and the agent then serves mutual TLS.
    public var csr: String?
    public init(token: String, arch: String?, cpuCores: Int?, memoryMB: Int?, diskGB: Int?, address: String, csr: String? = nil) {
        self.token = token; self.arch = arch; self.cpuCores = cpuCores; self.memoryMB = memoryMB; self.diskGB = diskGB
        self.address = address; self.csr = csr
    }
    enum CodingKeys: String, CodingKey {
        case token, arch, cpuCores = "cpu_cores", memoryMB = "memory_mb", diskGB = "disk_gb", address, csr
    }
}

/// `RegisterHostResponse` and `RefreshHostTokenResponse`: a host JWT (7 days, `X-Host-Token`), a rotating refresh
/// token (60 days) and `agent_token`, the bearer credential the control plane presents to this agent (not in the
/// original; it replaces the original's per-host mTLS certificate until mTLS lands).
public struct HostTokenResponse: Codable, Sendable {
    public var host: HostResource
    public var token: String
    public var refreshToken: String
    public var agentToken: String?
    /// The agent's certificate (PEM) signed by the control plane's agent CA, when the request carried a CSR.
    public var certificate: String?
    /// The CA certificate (PEM) the agent must require of its clients (the control plane's client certificate).
    public var caCertificate: String?
    public init(host: HostResource, token: String, refreshToken: String, agentToken: String?,
                certificate: String? = nil, caCertificate: String? = nil) {
        self.host = host; self.token = token; self.refreshToken = refreshToken; self.agentToken = agentToken
        self.certificate = certificate; self.caCertificate = caCertificate
    }
    enum CodingKeys: String, CodingKey {
        case host, token, certificate, refreshToken = "refresh_token", agentToken = "agent_token", caCertificate = "ca_certificate"
    }
}

/// `RefreshHostTokenRequest`.
public struct RefreshHostTokenRequest: Codable, Sendable {
    public var refreshToken: String
    /// A CSR for a renewed agent certificate (beyond the contract; optional: sent when the current one nears expiry).
    public var csr: String?
    public init(refreshToken: String, csr: String? = nil) { self.refreshToken = refreshToken; self.csr = csr }
    enum CodingKeys: String, CodingKey { case refreshToken = "refresh_token", csr }
}

/// Optional body of `POST /v1/hosts/{id}/heartbeat`: what the agent runs right now (informational; the control
/// plane's reconciler asks the agent itself before changing any capsule).
public struct HostHeartbeat: Codable, Sendable {
    public var capsules: [AgentCapsuleSummary]
    public init(capsules: [AgentCapsuleSummary]) { self.capsules = capsules }
}

/// One capsule in a heartbeat report.
public struct AgentCapsuleSummary: Codable, Sendable, Equatable {
    public var id: String
    public var status: AgentCapsuleStatus
    public init(id: String, status: AgentCapsuleStatus) { self.id = id; self.status = status }
}

/// `HostDeletePreview`.
public struct HostDeletePreview: Codable, Sendable {
    public var host: HostResource
    public var sandboxIDs: [String]
    public init(host: HostResource, sandboxIDs: [String]) { self.host = host; self.sandboxIDs = sandboxIDs }
    enum CodingKeys: String, CodingKey { case host, sandboxIDs = "sandbox_ids" }
}

/// `HostHasCapsulesError`: the 409 of `DELETE /v1/hosts/{id}` without `force`.
public struct HostHasCapsulesError: Codable, Sendable {
    public struct Body: Codable, Sendable {
        public var code: String
        public var message: String
        public var sandboxIDs: [String]
        public init(code: String, message: String, sandboxIDs: [String]) { self.code = code; self.message = message; self.sandboxIDs = sandboxIDs }
        enum CodingKeys: String, CodingKey { case code, message, sandboxIDs = "sandbox_ids" }
    }
    public var error: Body
    public init(error: Body) { self.error = error }
}

/// `AddTagRequest`.
public struct AddTagRequest: Codable, Sendable {
    public var tag: String
    public init(tag: String) { self.tag = tag }
}
