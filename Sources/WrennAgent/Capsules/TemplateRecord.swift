import Foundation
import WrennImage

/// A booted-snapshot template: disk, memory and device state any capsule can be restored from.
public struct TemplateRecord: Codable, Sendable, Equatable {
    /// How the template came to be.
    public enum Kind: String, Codable, Sendable {
        /// Cold-booted from an image once.
        case base
        /// Saved from a running or paused capsule.
        case snapshot
    }
    /// Template name (directory name).
    public var name: String
    /// Image it ultimately derives from.
    public var image: String
    /// Kind.
    public var kind: Kind
    /// Machine configuration every clone must reuse (paths point into the template directory).
    public var machine: QemuMachine
    /// Virtual size of the template disk (MiB).
    public var diskVirtualMiB: Int
    /// envd bearer token in effect inside the saved guest (clones replace it on re-identify).
    public var envdToken: String
    /// Creation time (seconds since the epoch).
    public var createdAt: Double
    /// Cold boot to envd healthy (base templates), seconds.
    public var bootSeconds: Double?
    /// Time to save memory + state + disk, seconds.
    public var saveSeconds: Double
}

/// Public view of a template.
public struct TemplateInfo: Sendable, Equatable, Codable {
    /// Name.
    public var name: String
    /// Image it derives from.
    public var image: String
    /// Kind.
    public var kind: TemplateRecord.Kind
    /// vCPUs every clone gets.
    public var vcpus: Int
    /// Memory every clone gets (MiB).
    public var memoryMiB: Int

    /// Creates a description.
    public init(name: String, image: String, kind: TemplateRecord.Kind, vcpus: Int, memoryMiB: Int) {
        self.name = name; self.image = image; self.kind = kind; self.vcpus = vcpus; self.memoryMiB = memoryMiB
    }
}

/// Files of one template directory (`<data>/templates/<name>/`).
public struct TemplateLayout: Sendable {
    /// The directory.
    public var directory: String
    /// Creates the layout.
    public init(directory: String) { self.directory = directory }
    /// Disk (qcow2; base templates: overlay over the image's rootfs.ext4; snapshots: flattened).
    public var disk: String { directory + "/disk.qcow2" }
    /// Guest RAM.
    public var memory: String { directory + "/memory.ram" }
    /// Device state.
    public var state: String { directory + "/state.bin" }
    /// Record.
    public var record: String { directory + "/template.json" }
    /// Boot console of a base template.
    public var console: String { directory + "/console.log" }

    /// Reads the record, or `nil` when the template is not complete.
    public func load() -> TemplateRecord? {
        guard let data = FileManager.default.contents(atPath: record) else { return nil }
        return try? JSONDecoder().decode(TemplateRecord.self, from: data)
    }

    /// Writes the record (marks the template complete).
    public func save(_ value: TemplateRecord) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try DurableFile.write(try encoder.encode(value), to: record)
    }
}
