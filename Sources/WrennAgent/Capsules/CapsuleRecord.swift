import Foundation
import WrennImage

/// Lifecycle state of a capsule on this host.
public enum CapsuleState: String, Codable, Sendable {
    case creating, running, pausing, paused, resuming, snapshotting, stopping, error
}

/// What the agent persists about a capsule (`capsule.json` in its directory), enough to re-adopt it after a
/// restart: the exact machine configuration (a restore needs the same devices), slot, files, state.
public struct CapsuleRecord: Codable, Sendable, Equatable {
    /// Capsule id (`cl-…`).
    public var id: String
    /// Template the capsule was created from.
    public var template: String
    /// Network slot.
    public var slot: Int
    /// Lifecycle state.
    public var state: CapsuleState
    /// QEMU configuration (with absolute file paths inside the capsule directory).
    public var machine: QemuMachine
    /// Requested disk size (MiB).
    public var diskMiB: Int
    /// envd bearer token in effect inside the guest.
    public var accessToken: String?
    /// Hostname given to the guest.
    public var hostname: String?
    /// PID of the running QEMU, if any.
    public var pid: Int32?
    /// Creation time (seconds since the epoch).
    public var createdAt: Double
    /// Last state change (seconds since the epoch).
    public var updatedAt: Double
    /// Last failure, if the capsule is in `error` or an operation failed.
    public var lastError: String?
    /// Outbound network through the host's NAT (`nil` in records written before egress existed: off).
    public var egress: Bool?
}

/// Public view of a capsule.
public struct CapsuleInfo: Sendable, Equatable, Codable {
    /// Capsule id.
    public var id: String
    /// Template name.
    public var template: String
    /// State.
    public var state: CapsuleState
    /// vCPUs.
    public var vcpus: Int
    /// Memory (MiB).
    public var memoryMiB: Int
    /// Disk (MiB).
    public var diskMiB: Int
    /// Network slot.
    public var slot: Int
    /// Address the agent reaches envd at.
    public var envdHost: String
    /// envd port.
    public var envdPort: Int
    /// QEMU PID while running.
    public var pid: Int32?
    /// Bearer token envd requires (the agent's data-plane calls carry it).
    public var accessToken: String?
    /// Accelerator in use.
    public var accelerator: QemuMachine.Accelerator
    /// Last failure, if any.
    public var lastError: String?

    /// Creates a description (runtimes outside this module, e.g. test runtimes, build these too).
    public init(id: String, template: String, state: CapsuleState, vcpus: Int, memoryMiB: Int, diskMiB: Int, slot: Int,
                envdHost: String, envdPort: Int, pid: Int32?, accessToken: String?, accelerator: QemuMachine.Accelerator,
                lastError: String?) {
        self.id = id; self.template = template; self.state = state; self.vcpus = vcpus; self.memoryMiB = memoryMiB
        self.diskMiB = diskMiB; self.slot = slot; self.envdHost = envdHost; self.envdPort = envdPort; self.pid = pid
        self.accessToken = accessToken; self.accelerator = accelerator; self.lastError = lastError
    }
}

/// Files of one capsule directory (`<data>/capsules/<id>/`).
public struct CapsuleLayout: Sendable {
    /// The directory.
    public var directory: String
    /// Creates the layout.
    public init(root: String, id: String) { directory = root + "/" + id }
    /// Persisted record.
    public var record: String { directory + "/capsule.json" }
    /// Disk overlay.
    public var disk: String { directory + "/disk.qcow2" }
    /// Guest RAM file.
    public var memory: String { directory + "/memory.ram" }
    /// Saved device state (while paused).
    public var state: String { directory + "/state.bin" }
    /// Serial console log.
    public var console: String { directory + "/console.log" }
    /// QMP socket.
    public var qmp: String { SocketPath.qmp(forDirectory: directory) }
    /// QEMU PID file.
    public var pidFile: String { directory + "/qemu.pid" }

    /// Writes a record atomically and durably (`DurableFile`).
    public func save(_ record: CapsuleRecord) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try DurableFile.write(try encoder.encode(record), to: self.record)
    }

    /// Reads the record.
    public func load() throws -> CapsuleRecord {
        try JSONDecoder().decode(CapsuleRecord.self, from: Data(contentsOf: URL(fileURLWithPath: record)))
    }
}
