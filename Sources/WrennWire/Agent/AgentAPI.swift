import Foundation

// The control plane ↔ host agent contract (HTTP/JSON + WebSocket). Every request carries
// `Authorization: Bearer <agent token>`; the agent compares it in constant time and answers 401 otherwise.
// Errors use the public envelope `{"error":{"code","message"}}` with the public codes (`not_found`, `invalid_state`,
// `invalid_request`, `conflict`, `unavailable`, `internal_error`), so the control plane can pass them through.
//
//   GET    /v1/host                                   → AgentHostFacts
//   POST   /v1/capsules            AgentCreateCapsule → 201 AgentCapsule (returns when the capsule runs, or fails)
//   GET    /v1/capsules                               → AgentCapsuleList
//   GET    /v1/capsules/{id}                          → AgentCapsule            (404 not_found)
//   DELETE /v1/capsules/{id}                          → 204                     (idempotent)
//   POST   /v1/capsules/{id}/pause                    → AgentCapsule (paused)   (409 invalid_state unless running)
//   POST   /v1/capsules/{id}/resume                   → AgentCapsule (running)  (409 invalid_state unless paused)
//   POST   /v1/capsules/{id}/ping                     → 204 (resets the idle timer; 409 unless running)
//   POST   /v1/capsules/{id}/snapshot  AgentSnapshotRequest → 201 AgentTemplate (the capsule keeps running)
//   GET    /v1/capsules/{id}/metrics?range=5m|10m|1h|2h|6h|12h|24h → AgentMetrics
//   GET    /v1/templates                              → [AgentTemplate]
//   DELETE /v1/templates/{name}                       → 204 (404 unknown; 409 for a base template)
//   ANY    /v1/capsules/{id}/envd/{path…}             → proxied verbatim to the capsule's envd `/{path…}`
//          (HTTP with streamed bodies both ways, and WebSocket upgrades), with envd's bearer token added by the
//          agent; 409 invalid_state when the capsule is not running. Counts as activity for the idle timer.
//
// The agent posts what it decides on its own (TTL auto-pause, VM crash) to the control plane's
// `POST /v1/hosts/sandbox-events` as `AgentCapsuleEvent` with the same bearer token.

/// Lifecycle states the agent reports (a subset of the public `Capsule.status`).
public enum AgentCapsuleStatus: String, Codable, Sendable {
    case starting, running, pausing, paused, resuming, stopping, stopped, error
}

/// `POST /v1/capsules`.
public struct AgentCreateCapsule: Codable, Sendable, Equatable {
    public var id: String
    public var template: String
    public var vcpus: Int
    public var memoryMB: Int
    public var diskSizeMB: Int
    /// Idle seconds before the agent auto-pauses the capsule; 0 = never.
    public var timeoutSec: Int
    /// Outbound network (NAT through the host) for this capsule; `nil` takes the agent's default (`--egress`).
    public var egress: Bool?
    public init(id: String, template: String, vcpus: Int, memoryMB: Int, diskSizeMB: Int, timeoutSec: Int, egress: Bool? = nil) {
        self.id = id; self.template = template; self.vcpus = vcpus; self.memoryMB = memoryMB
        self.diskSizeMB = diskSizeMB; self.timeoutSec = timeoutSec; self.egress = egress
    }
    enum CodingKeys: String, CodingKey {
        case id, template, vcpus, egress, memoryMB = "memory_mb", diskSizeMB = "disk_size_mb", timeoutSec = "timeout_sec"
    }
}

/// One capsule as the agent sees it.
public struct AgentCapsule: Codable, Sendable, Equatable {
    public var id: String
    public var status: AgentCapsuleStatus
    public var template: String
    public var vcpus: Int
    public var memoryMB: Int
    public var diskSizeMB: Int
    public var timeoutSec: Int
    public var createdAt: Date
    /// Runtime versions that go into the public capsule's metadata: `kernel_version`, `vmm_version`,
    /// `agent_version`, `envd_version`.
    public var metadata: [String: String]
    /// Why the capsule is in `error`, when it is.
    public var error: String?
    public init(id: String, status: AgentCapsuleStatus, template: String, vcpus: Int, memoryMB: Int, diskSizeMB: Int,
                timeoutSec: Int, createdAt: Date, metadata: [String: String], error: String? = nil) {
        self.id = id; self.status = status; self.template = template; self.vcpus = vcpus; self.memoryMB = memoryMB
        self.diskSizeMB = diskSizeMB; self.timeoutSec = timeoutSec; self.createdAt = createdAt; self.metadata = metadata
        self.error = error
    }
    enum CodingKeys: String, CodingKey {
        case id, status, template, vcpus, memoryMB = "memory_mb", diskSizeMB = "disk_size_mb", timeoutSec = "timeout_sec"
        case createdAt = "created_at", metadata, error
    }
}

/// `GET /v1/capsules`.
public struct AgentCapsuleList: Codable, Sendable {
    public var capsules: [AgentCapsule]
    public init(capsules: [AgentCapsule]) { self.capsules = capsules }
}

/// `POST /v1/capsules/{id}/snapshot`.
public struct AgentSnapshotRequest: Codable, Sendable {
    public var name: String
    public init(name: String) { self.name = name }
}

/// A template the agent can create capsules from (base image or snapshot).
public struct AgentTemplate: Codable, Sendable, Equatable {
    public var name: String
    /// `base` or `snapshot`.
    public var type: String
    public var vcpus: Int
    public var memoryMB: Int
    public var sizeBytes: Int64
    public var createdAt: Date
    public init(name: String, type: String, vcpus: Int, memoryMB: Int, sizeBytes: Int64, createdAt: Date) {
        self.name = name; self.type = type; self.vcpus = vcpus; self.memoryMB = memoryMB; self.sizeBytes = sizeBytes
        self.createdAt = createdAt
    }
    enum CodingKeys: String, CodingKey {
        case name, type, vcpus, memoryMB = "memory_mb", sizeBytes = "size_bytes", createdAt = "created_at"
    }
}

/// `GET /v1/host`: what the machine offers and which versions its capsules run.
public struct AgentHostFacts: Codable, Sendable, Equatable {
    public var arch: String
    public var cpuCores: Int
    public var memoryMB: Int
    public var diskGB: Int
    /// `kvm` or `tcg`.
    public var accelerator: String
    public var kernelVersion: String
    public var vmmVersion: String
    public var agentVersion: String
    public var envdVersion: String
    public init(arch: String, cpuCores: Int, memoryMB: Int, diskGB: Int, accelerator: String, kernelVersion: String,
                vmmVersion: String, agentVersion: String, envdVersion: String) {
        self.arch = arch; self.cpuCores = cpuCores; self.memoryMB = memoryMB; self.diskGB = diskGB
        self.accelerator = accelerator; self.kernelVersion = kernelVersion; self.vmmVersion = vmmVersion
        self.agentVersion = agentVersion; self.envdVersion = envdVersion
    }
    enum CodingKeys: String, CodingKey {
        case arch, cpuCores = "cpu_cores", memoryMB = "memory_mb", diskGB = "disk_gb", accelerator
        case kernelVersion = "kernel_version", vmmVersion = "vmm_version", agentVersion = "agent_version"
        case envdVersion = "envd_version"
    }
}

/// One metrics sample of a capsule.
public struct AgentMetricPoint: Codable, Sendable, Equatable {
    public var timestamp: Date
    public var cpuPercent: Double
    public var memoryBytes: Int64
    public var diskBytes: Int64
    public init(timestamp: Date, cpuPercent: Double, memoryBytes: Int64, diskBytes: Int64) {
        self.timestamp = timestamp; self.cpuPercent = cpuPercent; self.memoryBytes = memoryBytes; self.diskBytes = diskBytes
    }
    enum CodingKeys: String, CodingKey {
        case timestamp, cpuPercent = "cpu_pct", memoryBytes = "mem_bytes", diskBytes = "disk_bytes"
    }
}

/// `GET /v1/capsules/{id}/metrics`.
public struct AgentMetrics: Codable, Sendable {
    public var range: String
    public var points: [AgentMetricPoint]
    public init(range: String, points: [AgentMetricPoint]) { self.range = range; self.points = points }
}

/// What the agent tells the control plane about a change it made on its own.
public struct AgentCapsuleEvent: Codable, Sendable, Equatable {
    /// `auto_paused`, `stopped`, `error`.
    public var kind: String
    public var capsuleID: String
    public var status: AgentCapsuleStatus
    public var reason: String?
    public var at: Date
    public init(kind: String, capsuleID: String, status: AgentCapsuleStatus, reason: String?, at: Date) {
        self.kind = kind; self.capsuleID = capsuleID; self.status = status; self.reason = reason; self.at = at
    }
    enum CodingKeys: String, CodingKey { case kind, capsuleID = "capsule_id", status, reason, at }
}
