import Foundation
import WrennPKI

/// Everything ``AgentServer`` needs to start.
public struct AgentServerConfiguration: Sendable {
    /// Address to bind (`127.0.0.1` by default; the control plane reaches the agent through it).
    public var host: String
    /// TCP port (0 picks a free one; the bound port is passed to `onListening`).
    public var port: Int
    /// Bearer token every request must carry (`WRENN_AGENT_TOKEN`).
    public var token: String
    /// Data directory (`WRENN_DIR`): the agent keeps its own records under `<dir>/agent/`.
    public var dataDirectory: String
    /// Control plane base URL (`WRENN_CP_URL`); events go to `<url>/v1/hosts/sandbox-events`. `nil` = only log them.
    public var controlPlaneURL: String?
    /// Token sent with events to the control plane (defaults to ``token``).
    public var controlPlaneToken: String?
    /// Smallest idle timeout a capsule can have (shorter non-zero values are raised to it). 60 s in production.
    public var minimumIdleTimeout: Duration
    /// How often the idle reaper and the crash watcher look at the capsules.
    public var reaperInterval: Duration
    /// Bound on connecting to a capsule's envd.
    public var envdConnectTimeout: Duration
    /// Bound on a proxied request receiving envd's response head (bodies stream without a bound).
    public var envdResponseTimeout: Duration
    /// Largest WebSocket frame accepted from either side of the envd WebSocket proxy.
    public var maxWebSocketFrame: Int
    /// First retry delay of event delivery (doubles up to ``eventRetryMaxDelay``).
    public var eventRetryDelay: Duration
    /// Largest retry delay of event delivery.
    public var eventRetryMaxDelay: Duration
    /// The agent's registration with its control plane (`wrenn agent --register`): events then carry the host JWT
    /// (`X-Host-Token`) and the agent heartbeats every ``heartbeatInterval``. `nil` = the shared-token setup.
    public var hostSession: HostSession? = nil
    /// Mutual TLS (certificate from the control plane's CA, issued at registration and renewed at refresh): the
    /// agent then accepts only clients presenting a certificate of that CA. `nil` = plain HTTP (the unregistered,
    /// loopback-only setup of `wrenn dev`).
    public var tls: RenewableServerIdentity? = nil
    /// Heartbeat period when registered (30 s in production).
    public var heartbeatInterval: Duration = .seconds(30)

    /// Creates a configuration; host, port and token are required, the rest has production defaults.
    public init(
        host: String = "127.0.0.1",
        port: Int = 9725,
        token: String,
        dataDirectory: String,
        controlPlaneURL: String? = nil,
        controlPlaneToken: String? = nil,
        minimumIdleTimeout: Duration = .seconds(60),
        reaperInterval: Duration = .seconds(2),
        envdConnectTimeout: Duration = .seconds(5),
        envdResponseTimeout: Duration = .seconds(3600),
        maxWebSocketFrame: Int = 1 << 24,
        eventRetryDelay: Duration = .milliseconds(500),
        eventRetryMaxDelay: Duration = .seconds(30)
    ) {
        self.host = host
        self.port = port
        self.token = token
        self.dataDirectory = dataDirectory
        self.controlPlaneURL = controlPlaneURL
        self.controlPlaneToken = controlPlaneToken
        self.minimumIdleTimeout = minimumIdleTimeout
        self.reaperInterval = reaperInterval
        self.envdConnectTimeout = envdConnectTimeout
        self.envdResponseTimeout = envdResponseTimeout
        self.maxWebSocketFrame = maxWebSocketFrame
        self.eventRetryDelay = eventRetryDelay
        self.eventRetryMaxDelay = eventRetryMaxDelay
    }

    /// Where the agent's own files live (capsule book, event spool).
    public var agentDirectory: String { dataDirectory + "/agent" }

    /// The sandbox-events URL, when a control plane is configured.
    public var eventsURL: String? {
        guard let base = controlPlaneURL?.trimmingCharacters(in: .whitespaces), !base.isEmpty else { return nil }
        return (base.hasSuffix("/") ? String(base.dropLast()) : base) + "/v1/hosts/sandbox-events"
    }

    /// The version this agent reports.
    public static let agentVersion = "0.2.0"
}
