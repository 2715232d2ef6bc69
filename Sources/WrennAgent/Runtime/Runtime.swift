/// A capsule runtime: creates, pauses, resumes, snapshots and destroys capsules on this host.
///
/// ``QemuMicrovmRuntime`` is the implementation (QEMU `microvm`); another VMM or a namespace-only runtime can be
/// added behind the same protocol.
public protocol Runtime: Sendable {
    /// Re-adopts persisted capsules, cleans stale network state; call once before anything else.
    func start() async throws
    /// Creates a capsule from a template (restored from its booted snapshot) and waits for envd.
    func create(_ request: CapsuleRequest) async throws -> CapsuleInfo
    /// Saves device state, keeps memory + disk, and stops the VMM.
    func pause(_ id: String) async throws -> CapsuleInfo
    /// Restores a paused capsule into the same network slot.
    func resume(_ id: String) async throws -> CapsuleInfo
    /// Writes a new template (memory + state + flattened disk) from a running or paused capsule.
    func snapshot(_ id: String, as template: String) async throws -> TemplateInfo
    /// Removes everything of a capsule; succeeds if it does not exist.
    func destroy(_ id: String) async throws
    /// Deletes a template directory.
    func deleteTemplate(_ name: String) async throws
    /// All capsules on this host.
    func list() async -> [CapsuleInfo]
    /// One capsule.
    func info(_ id: String) async throws -> CapsuleInfo
}

/// What to create.
public struct CapsuleRequest: Sendable, Equatable {
    /// Capsule id (`cl-…`): lowercase letters, digits and `-`, at most 64 characters.
    public var id: String
    /// Template or image name (default `minimal`).
    public var template: String
    /// vCPUs (ignored for snapshot templates, which fix their own).
    public var vcpus: Int
    /// Memory in MiB (ignored for snapshot templates).
    public var memoryMiB: Int
    /// Disk size in MiB (the overlay is max(this, template disk)).
    public var diskMiB: Int
    /// Hostname set in the guest (default: the id).
    public var hostname: String?
    /// envd bearer token handed to the guest on re-identify.
    public var accessToken: String?
    /// Outbound network through the host's NAT; `nil` takes ``RuntimeConfig/egressDefault``.
    public var egress: Bool?

    /// Creates a request with the spec's defaults (1 vCPU, 512 MiB, 5120 MiB disk).
    public init(id: String, template: String = "minimal", vcpus: Int = 1, memoryMiB: Int = 512, diskMiB: Int = 5120,
                hostname: String? = nil, accessToken: String? = nil, egress: Bool? = nil) {
        self.id = id
        self.template = template
        self.vcpus = vcpus
        self.memoryMiB = memoryMiB
        self.diskMiB = diskMiB
        self.hostname = hostname
        self.accessToken = accessToken
        self.egress = egress
    }
}
