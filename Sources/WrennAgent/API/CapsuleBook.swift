import Foundation
import WrennImage
import Logging
import WrennWire

/// What the agent keeps about a capsule beyond the runtime's record: what the control plane asked for.
struct AgentCapsuleRecord: Codable, Sendable, Equatable {
    var id: String
    /// Template name as requested (the runtime may resolve it to a base-template key).
    var template: String
    var vcpus: Int
    var memoryMB: Int
    var diskSizeMB: Int
    /// Idle timeout after clamping; 0 = never.
    var timeoutSec: Int
    var createdAt: Date
    /// envd's version as its `/health` reported it at create.
    var envdVersion: String?
}

/// The agent's capsule records, one JSON file each under `<data>/agent/capsules/`, so timeouts and creation
/// times survive an agent restart alongside the runtime's own records.
actor CapsuleBook {
    private let directory: String
    private let logger: Logger
    private var records: [String: AgentCapsuleRecord] = [:]
    /// Capsules the crash watcher reported (reason), until they are destroyed or resumed.
    private var crashed: [String: String] = [:]

    init(directory: String, logger: Logger) {
        self.directory = directory
        self.logger = logger
    }

    /// Loads the records of capsules the runtime still knows; deletes the others.
    func load(keeping ids: Set<String>) {
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let decoder = WireCoding.makeDecoder()
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where name.hasSuffix(".json") {
            let path = directory + "/" + name
            guard let data = FileManager.default.contents(atPath: path),
                  let record = try? decoder.decode(AgentCapsuleRecord.self, from: data), ids.contains(record.id) else {
                try? FileManager.default.removeItem(atPath: path)
                continue
            }
            records[record.id] = record
        }
    }

    func record(_ id: String) -> AgentCapsuleRecord? { records[id] }

    /// Stores (and persists) a record.
    func save(_ record: AgentCapsuleRecord) {
        records[record.id] = record
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try DurableFile.write(try WireCoding.makeEncoder().encode(record), to: path(record.id))
        } catch {
            logger.error("cannot persist capsule record", metadata: ["id": "\(record.id)", "error": "\(error)"])
        }
    }

    func remove(_ id: String) {
        records[id] = nil
        crashed[id] = nil
        try? FileManager.default.removeItem(atPath: path(id))
    }

    /// Marks a capsule's VMM as gone; true the first time (so the event is sent once).
    func markCrashed(_ id: String, reason: String) -> Bool {
        guard crashed[id] == nil else { return false }
        crashed[id] = reason
        return true
    }

    func crashReason(_ id: String) -> String? { crashed[id] }

    func clearCrash(_ id: String) { crashed[id] = nil }

    private func path(_ id: String) -> String { directory + "/" + id + ".json" }
}
