import Foundation
import SQLKit
import WrennWire

/// The one durable, ordered event log. Lifecycle changes append here inside the transaction that makes them, so an
/// event exists exactly when its change does; SSE streams read it (with `Last-Event-ID` replay), and later
/// notification channels deliver from it.
public struct EventLog: Sendable {
    let database: Database
    let clock: any WallClock

    /// Appends `event` for `team`.
    func append(_ event: SSEEvent, team: String, _ sql: any SQLDatabase) async throws {
        let payload = String(decoding: try WireCoding.makeEncoder().encode(event), as: UTF8.self)
        try await EventRepository.append(team: team, kind: event.event, payload: payload, at: event.timestamp.millis, sql)
    }

    /// The team's events after `seq` (every team's when `team` is nil), oldest first.
    func events(after seq: Int64, team: String?, limit: Int = 500) async throws -> [EventRecord] {
        try await database.read { sql in try await EventRepository.after(seq: seq, team: team, limit: limit, sql) }
    }

    func latestSeq() async throws -> Int64 {
        try await database.read { sql in try await EventRepository.latestSeq(sql) }
    }

    /// A capsule lifecycle event.
    static func capsuleEvent(_ kind: String, outcome: String?, capsule: Capsule?, id: String, actor: AuditActor,
                             metadata: [String: String]? = nil, error: String? = nil, at: Date) -> SSEEvent {
        SSEEvent(event: kind, outcome: outcome, resource: .init(id: id, type: "capsule"),
                 actor: .init(type: actor.type, id: actor.id, name: actor.name), metadata: metadata, error: error,
                 sandbox: capsule, timestamp: at)
    }
}
