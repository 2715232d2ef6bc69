import Foundation

/// Limits and rules of the control plane's HTTP edge (`docs/security.md`).
public struct EdgeSettings: Sendable {
    /// Origins besides the public URL's and the dashboard's (`WRENN_ALLOWED_ORIGINS`, comma-separated) that may open
    /// a WebSocket with a session cookie.
    public var allowedOrigins: [String] = []
    /// Concurrent data-plane HTTP calls (exec, files, processes) one team may have open; the next is 429.
    public var dataPlaneCallsPerTeam = 32
    /// Concurrent capsule WebSocket streams (exec stream, PTY, process stream, port-proxy sockets) per team.
    public var streamsPerTeam = 64
    /// Concurrent `GET /v1/events/stream` per principal (API key or session) and on the whole control plane.
    public var eventStreamsPerPrincipal = 8
    public var eventStreamsTotal = 1000
    /// Bytes of a `file` part that may wait on disk for a `path` part sent after it (`files/stream/write`).
    public var uploadSpoolLimit: Int64 = 100 << 20
    /// A connection that sends no complete request head for this long is closed (slow-header clients).
    public var idleTimeout: Duration = .seconds(60)
    /// How long the body of a JSON answer from a capsule may take once its head arrived (envd sends it at once; a guest
    /// that drips it slowly is cut off with 502).
    public var answerBodyTimeout: Duration = .seconds(120)
    /// Seconds a refused caller is asked to wait before trying again.
    public var retryAfterSeconds = 5

    public init() {}

    /// `WRENN_ALLOWED_ORIGINS`, `WRENN_TEAM_DATA_PLANE_LIMIT`, `WRENN_TEAM_STREAM_LIMIT`, `WRENN_EVENT_STREAM_LIMIT`.
    static func fromEnvironment(_ environment: [String: String]) throws -> EdgeSettings {
        var settings = EdgeSettings()
        if let origins = environment["WRENN_ALLOWED_ORIGINS"] {
            settings.allowedOrigins = origins.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        func limit(_ name: String) throws -> Int? {
            guard let text = environment[name], !text.isEmpty else { return nil }
            guard let value = Int(text), value > 0 else { throw ConfigError("\(name) must be a positive integer") }
            return value
        }
        if let value = try limit("WRENN_TEAM_DATA_PLANE_LIMIT") { settings.dataPlaneCallsPerTeam = value }
        if let value = try limit("WRENN_TEAM_STREAM_LIMIT") { settings.streamsPerTeam = value }
        if let value = try limit("WRENN_EVENT_STREAM_LIMIT") { settings.eventStreamsPerPrincipal = value }
        return settings
    }
}
