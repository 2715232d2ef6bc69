import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ServiceLifecycle
import WrennWire

/// `GET /v1/events/stream`: Server-Sent Events of the caller's team, from the durable event log.
///
/// Sends a `connected` sentinel, then every new event as `id: <seq>` / `event: <kind>` / `data: <json>`; a client
/// reconnecting with `Last-Event-ID` first receives what it missed. A `: keepalive` comment goes out every
/// `keepalive` interval. New events are found by polling the log (cheap indexed query), which works the same with
/// one replica on SQLite or several on PostgreSQL.
struct EventRoutes {
    let services: ControlPlaneServices
    var pollInterval: Duration = .milliseconds(250)
    var keepalive: Duration = .seconds(30)

    func register(on router: Router<WrennRequestContext>) {
        router.get("v1/events/stream") { request, context -> Response in
            let principal = try context.requireCaller(request)
            return try await stream(request, team: try principal.requireTeam(), caller: principal)
        }
    }

    /// The SSE response of `team`'s events, or of every team's when `team` is nil (the admin stream). Each caller (API
    /// key or user) may hold `EdgeSettings.eventStreamsPerPrincipal` streams, the server `eventStreamsTotal`; beyond,
    /// 429 + `Retry-After`.
    func stream(_ request: Request, team: String?, caller: Principal) async throws -> Response {
        let permit = try services.eventStreams.acquire(Self.key(caller))
        let events = services.events
        let start: Int64
        if let last = request.headers[.lastEventID].flatMap({ Int64($0) }), last >= 0 {
            start = last
        } else {
            start = try await events.latestSeq()
        }
        let poll = pollInterval, keepalive = keepalive
        let body = ResponseBody { writer in
            defer { permit.release() }
            let connected = SSEEvent(event: "connected", timestamp: services.clock.now())
            try await writer.write(Self.frame(id: nil, kind: "connected", json: try WireCoding.makeEncoder().encode(connected)))
            var cursor = start
            var lastWrite = ContinuousClock.now
            // Ends on graceful shutdown too, so a server stop never waits for an open stream.
            while !Task.isCancelled, !Task.isShuttingDownGracefully {
                let batch = try await events.events(after: cursor, team: team)
                for event in batch {
                    try await writer.write(Self.frame(id: event.seq, kind: event.kind, json: Data(event.payload.utf8)))
                    cursor = event.seq
                    lastWrite = .now
                }
                if ContinuousClock.now - lastWrite >= keepalive {
                    try await writer.write(ByteBuffer(string: ": keepalive\n\n"))
                    lastWrite = .now
                }
                if batch.isEmpty { try await Task.sleep(for: poll) }
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }

    /// Whose share an event stream counts against.
    static func key(_ principal: Principal) -> String {
        switch principal.credential {
        case .apiKey(let id, _): "key:\(id)"
        case .session(let id, _): "user:\(principal.userID ?? id)"
        }
    }

    static func frame(id: Int64?, kind: String, json: Data) -> ByteBuffer {
        var text = ""
        if let id { text += "id: \(id)\n" }
        text += "event: \(kind)\ndata: \(String(decoding: json, as: UTF8.self))\n\n"
        return ByteBuffer(string: text)
    }
}

extension HTTPField.Name {
    static let lastEventID = Self("Last-Event-ID")!
}
