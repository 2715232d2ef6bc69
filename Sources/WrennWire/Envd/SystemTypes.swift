/// `GET /health` answer (no authentication needed).
public struct EnvdHealth: Codable, Sendable, Equatable {
    /// Always `ok` when envd answers.
    public var status: String
    /// envd version.
    public var version: String

    public init(status: String, version: String) {
        self.status = status
        self.version = version
    }
}

/// `GET /metrics` answer: the guest's own view of its resources.
public struct EnvdMetrics: Codable, Sendable, Equatable {
    /// Sample time, Unix milliseconds.
    public var timestampMs: Int64
    /// Online CPUs.
    public var cpuCount: Int
    /// CPU busy percentage across all CPUs since the previous sample (0–100).
    public var cpuUsedPct: Double
    /// Total memory, bytes.
    public var memTotal: Int64
    /// Used memory (total − available), bytes.
    public var memUsed: Int64
    /// Size of the root file system, bytes.
    public var diskTotal: Int64
    /// Used space of the root file system, bytes.
    public var diskUsed: Int64

    public init(
        timestampMs: Int64, cpuCount: Int, cpuUsedPct: Double, memTotal: Int64, memUsed: Int64, diskTotal: Int64,
        diskUsed: Int64
    ) {
        self.timestampMs = timestampMs
        self.cpuCount = cpuCount
        self.cpuUsedPct = cpuUsedPct
        self.memTotal = memTotal
        self.memUsed = memUsed
        self.diskTotal = diskTotal
        self.diskUsed = diskUsed
    }

    enum CodingKeys: String, CodingKey {
        case timestampMs = "ts_ms"
        case cpuCount = "cpu_count"
        case cpuUsedPct = "cpu_used_pct"
        case memTotal = "mem_total"
        case memUsed = "mem_used"
        case diskTotal = "disk_total"
        case diskUsed = "disk_used"
    }
}

/// `POST /snapshot/restored` body: re-identify a capsule cloned from a snapshot. Every field is optional;
/// omitted fields keep their value.
public struct EnvdRestoreRequest: Codable, Sendable, Equatable {
    /// The new capsule id (`cl-…`); exported to processes as `WRENN_CAPSULE_ID`.
    public var capsuleId: String?
    /// New host name (sethostname).
    public var hostname: String?
    /// New bearer token; the old one stops working once this request is answered.
    public var accessToken: String?
    /// New default user for processes and file ownership.
    public var defaultUser: String?
    /// New default environment (replaces the old one).
    public var defaultEnv: [String: String]?
    /// Host's wall clock, Unix milliseconds; the guest clock is set to it.
    public var timestampMs: Int64?
    /// Base64 random bytes mixed into the kernel RNG (written to /dev/urandom) in addition to envd's own.
    public var entropy: String?
    /// DNS servers (IP literals, at most 3) written to the guest's resolv.conf; sent for capsules with egress.
    public var nameservers: [String]?
    /// The root disk's new size in bytes, when the host grew it beyond the template's: envd waits until the kernel
    /// sees the new capacity and grows the root file system to fill it (`resize2fs`, online).
    public var rootDiskBytes: Int64?

    public init(
        capsuleId: String? = nil, hostname: String? = nil, accessToken: String? = nil, defaultUser: String? = nil,
        defaultEnv: [String: String]? = nil, timestampMs: Int64? = nil, entropy: String? = nil, nameservers: [String]? = nil
    ) {
        self.capsuleId = capsuleId
        self.hostname = hostname
        self.accessToken = accessToken
        self.defaultUser = defaultUser
        self.defaultEnv = defaultEnv
        self.timestampMs = timestampMs
        self.entropy = entropy
        self.nameservers = nameservers
    }

    enum CodingKeys: String, CodingKey {
        case hostname, entropy, nameservers
        case capsuleId = "capsule_id"
        case accessToken = "access_token"
        case defaultUser = "default_user"
        case defaultEnv = "default_env"
        case timestampMs = "timestamp_ms"
        case rootDiskBytes = "root_disk_bytes"
    }
}

/// `POST /snapshot/restored` answer: what envd applied.
public struct EnvdRestoreResponse: Codable, Sendable, Equatable {
    /// Capsule id now in effect.
    public var capsuleId: String?
    /// True when the clock was set.
    public var clockSet: Bool
    /// True when the kernel RNG was reseeded.
    public var rngReseeded: Bool
    /// True when the host name was set.
    public var hostnameSet: Bool

    public init(capsuleId: String?, clockSet: Bool, rngReseeded: Bool, hostnameSet: Bool) {
        self.capsuleId = capsuleId
        self.clockSet = clockSet
        self.rngReseeded = rngReseeded
        self.hostnameSet = hostnameSet
    }

    enum CodingKeys: String, CodingKey {
        case capsuleId = "capsule_id"
        case clockSet = "clock_set"
        case rngReseeded = "rng_reseeded"
        case hostnameSet = "hostname_set"
    }
}
