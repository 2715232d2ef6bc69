import Foundation

// Wire types of the capsule half of the public API (tags capsules, snapshots, events). Names follow the spec's
// schemas; JSON keys are snake_case as the spec spells them.

/// `Capsule.status`: every value the SDK knows (its enum also has `snapshotting`, which this server never sends).
public enum CapsuleStatus: String, Codable, Sendable, CaseIterable {
    case pending, starting, running, pausing, paused, resuming, stopping, hibernated, stopped, missing, error

    /// States from which nothing more will happen without a request.
    public var isTerminal: Bool { self == .stopped || self == .error }
    /// States in which the capsule's VM or its files exist on a host.
    public var isLive: Bool { !isTerminal }
}

/// `Capsule`.
public struct Capsule: Codable, Sendable, Equatable {
    public var id: String
    public var status: CapsuleStatus
    public var template: String
    public var vcpus: Int
    public var memoryMB: Int
    public var timeoutSec: Int
    public var diskSizeMB: Int?
    public var createdAt: Date
    public var startedAt: Date?
    public var lastActiveAt: Date?
    public var lastUpdated: Date
    public var metadata: [String: String]?

    public init(id: String, status: CapsuleStatus, template: String, vcpus: Int, memoryMB: Int, timeoutSec: Int, diskSizeMB: Int?,
                createdAt: Date, startedAt: Date?, lastActiveAt: Date?, lastUpdated: Date, metadata: [String: String]?) {
        self.id = id; self.status = status; self.template = template; self.vcpus = vcpus; self.memoryMB = memoryMB
        self.timeoutSec = timeoutSec; self.diskSizeMB = diskSizeMB; self.createdAt = createdAt; self.startedAt = startedAt
        self.lastActiveAt = lastActiveAt; self.lastUpdated = lastUpdated; self.metadata = metadata
    }

    enum CodingKeys: String, CodingKey {
        case id, status, template, vcpus, memoryMB = "memory_mb", timeoutSec = "timeout_sec", diskSizeMB = "disk_size_mb"
        case createdAt = "created_at", startedAt = "started_at", lastActiveAt = "last_active_at", lastUpdated = "last_updated"
        case metadata
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(status, forKey: .status)
        try c.encode(template, forKey: .template)
        try c.encode(vcpus, forKey: .vcpus)
        try c.encode(memoryMB, forKey: .memoryMB)
        try c.encode(timeoutSec, forKey: .timeoutSec)
        try c.encode(diskSizeMB, forKey: .diskSizeMB)
        try c.encode(createdAt, forKey: .createdAt)
        try c.encode(startedAt, forKey: .startedAt)       // explicit null, as the spec marks it nullable
        try c.encode(lastActiveAt, forKey: .lastActiveAt)
        try c.encode(lastUpdated, forKey: .lastUpdated)
        try c.encode(metadata, forKey: .metadata)
    }
}

/// `CreateCapsuleRequest`.
public struct CreateCapsuleRequest: Codable, Sendable, Equatable {
    public var template: String?
    public var vcpus: Int?
    public var memoryMB: Int?
    public var diskSizeMB: Int?
    public var timeoutSec: Int?
    public init(template: String? = nil, vcpus: Int? = nil, memoryMB: Int? = nil, diskSizeMB: Int? = nil, timeoutSec: Int? = nil) {
        self.template = template; self.vcpus = vcpus; self.memoryMB = memoryMB; self.diskSizeMB = diskSizeMB; self.timeoutSec = timeoutSec
    }
    enum CodingKeys: String, CodingKey {
        case template, vcpus, memoryMB = "memory_mb", diskSizeMB = "disk_size_mb", timeoutSec = "timeout_sec"
    }
}

/// `Template` (snapshots and base images).
public struct Template: Codable, Sendable, Equatable {
    public var name: String
    public var type: String
    public var vcpus: Int?
    public var memoryMB: Int?
    public var sizeBytes: Int64
    public var createdAt: Date
    public var platform: Bool
    public var metadata: [String: String]?
    public init(name: String, type: String, vcpus: Int?, memoryMB: Int?, sizeBytes: Int64, createdAt: Date, platform: Bool,
                metadata: [String: String]?) {
        self.name = name; self.type = type; self.vcpus = vcpus; self.memoryMB = memoryMB; self.sizeBytes = sizeBytes
        self.createdAt = createdAt; self.platform = platform; self.metadata = metadata
    }
    enum CodingKeys: String, CodingKey {
        case name, type, vcpus, memoryMB = "memory_mb", sizeBytes = "size_bytes", createdAt = "created_at", platform, metadata
    }
}

/// `CreateSnapshotRequest`.
public struct CreateSnapshotRequest: Codable, Sendable {
    public var sandboxID: String
    public var name: String?
    public init(sandboxID: String, name: String? = nil) { self.sandboxID = sandboxID; self.name = name }
    enum CodingKeys: String, CodingKey { case sandboxID = "sandbox_id", name }
}

/// One message of `GET /v1/events/stream` (`SSEEvent`): the `event:` line is `event`, this JSON is the `data:` line.
public struct SSEEvent: Codable, Sendable, Equatable {
    public struct Resource: Codable, Sendable, Equatable {
        public var id: String
        public var type: String
        public init(id: String, type: String) { self.id = id; self.type = type }
    }
    public struct Actor: Codable, Sendable, Equatable {
        public var type: String
        public var id: String?
        public var name: String?
        public init(type: String, id: String?, name: String?) { self.type = type; self.id = id; self.name = name }
    }
    public var event: String
    public var outcome: String?
    public var resource: Resource?
    public var actor: Actor?
    public var metadata: [String: String]?
    public var error: String?
    public var sandbox: Capsule?
    public var timestamp: Date
    public init(event: String, outcome: String? = nil, resource: Resource? = nil, actor: Actor? = nil,
                metadata: [String: String]? = nil, error: String? = nil, sandbox: Capsule? = nil, timestamp: Date) {
        self.event = event; self.outcome = outcome; self.resource = resource; self.actor = actor; self.metadata = metadata
        self.error = error; self.sandbox = sandbox; self.timestamp = timestamp
    }
}

/// `MetricPoint`.
public struct MetricPoint: Codable, Sendable, Equatable {
    public var timestampUnix: Int64
    public var cpuPct: Double
    public var memBytes: Int64
    public var diskBytes: Int64
    public init(timestampUnix: Int64, cpuPct: Double, memBytes: Int64, diskBytes: Int64) {
        self.timestampUnix = timestampUnix; self.cpuPct = cpuPct; self.memBytes = memBytes; self.diskBytes = diskBytes
    }
    enum CodingKeys: String, CodingKey {
        case timestampUnix = "timestamp_unix", cpuPct = "cpu_pct", memBytes = "mem_bytes", diskBytes = "disk_bytes"
    }
}

/// `CapsuleMetrics`.
public struct CapsuleMetrics: Codable, Sendable {
    public var sandboxID: String
    public var range: String
    public var points: [MetricPoint]
    public init(sandboxID: String, range: String, points: [MetricPoint]) { self.sandboxID = sandboxID; self.range = range; self.points = points }
    enum CodingKeys: String, CodingKey { case sandboxID = "sandbox_id", range, points }
}
