/// Everything envd needs to start. The identity fields (token, capsule id, default user and environment)
/// are only the initial values: `POST /snapshot/restored` replaces them at run time.
public struct EnvdConfiguration: Sendable {
    /// Address to bind (`0.0.0.0` in a capsule, `127.0.0.1` in tests).
    public var host: String
    /// TCP port (0 picks a free one; the bound port is passed to `onListening`).
    public var port: Int
    /// Bearer token every request but `GET /health` must carry.
    public var accessToken: String
    /// Capsule id (`cl-…`), exported to processes as `WRENN_CAPSULE_ID`.
    public var capsuleID: String?
    /// User processes run as unless a request names another; nil means the user envd runs as.
    public var defaultUser: String?
    /// Environment added to every process (below a request's own `envs`).
    public var defaultEnv: [String: String]
    /// Limits and buffer sizes.
    public var limits: EnvdLimits
    /// Interval of `{"type":"ping"}` frames on PTY sockets.
    public var ptyPingInterval: Duration
    /// How long an exited background process or PTY session stays attachable (its output replayable).
    public var exitedRetention: Duration
    /// Version reported by `GET /health`.
    public var version: String
    /// The resolver file `POST /snapshot/restored` rewrites when it carries `nameservers` (`--resolv-conf`;
    /// tests point it at a temporary file, since envd runs on the host there).
    public var resolvConfPath: String = "/etc/resolv.conf"

    /// Creates a configuration; only the token is required.
    public init(
        host: String = "0.0.0.0",
        port: Int = EnvdConfiguration.defaultPort,
        accessToken: String,
        capsuleID: String? = nil,
        defaultUser: String? = nil,
        defaultEnv: [String: String] = [:],
        limits: EnvdLimits = EnvdLimits(),
        ptyPingInterval: Duration = .seconds(30),
        exitedRetention: Duration = .seconds(600),
        version: String = EnvdConfiguration.envdVersion
    ) {
        self.host = host
        self.port = port
        self.accessToken = accessToken
        self.capsuleID = capsuleID
        self.defaultUser = defaultUser
        self.defaultEnv = defaultEnv
        self.limits = limits
        self.ptyPingInterval = ptyPingInterval
        self.exitedRetention = exitedRetention
        self.version = version
    }

    /// The port envd listens on inside a capsule (the original's, kept for familiarity).
    public static let defaultPort = 49983
    /// This build's version.
    public static let envdVersion = "0.2.0"
}

/// Sizes and timeouts; the defaults are documented in `docs/envd.md`.
public struct EnvdLimits: Sendable {
    /// Foreground exec: bytes kept per stream; the rest is read and discarded (the child never blocks).
    public var execOutputCap: Int
    /// Foreground exec timeout when the request gives none.
    public var defaultExecTimeout: Duration
    /// Replay buffer of each background process and exec stream (stdout and stderr together).
    public var processReplayBytes: Int
    /// Scrollback kept by each PTY session for reconnects.
    public var ptyReplayBytes: Int
    /// After a process exits, how long to wait for its pipes to reach EOF (grandchildren may hold them open).
    public var drainGrace: Duration
    /// Largest WebSocket message accepted from a client.
    public var maxClientMessage: Int
    /// Largest number of entries one directory listing returns.
    public var maxListEntries: Int

    /// Creates limits; every parameter has a default.
    public init(
        execOutputCap: Int = 16 << 20,
        defaultExecTimeout: Duration = .seconds(30),
        processReplayBytes: Int = 1 << 20,
        ptyReplayBytes: Int = 256 << 10,
        drainGrace: Duration = .milliseconds(500),
        maxClientMessage: Int = 1 << 20,
        maxListEntries: Int = 100_000
    ) {
        self.execOutputCap = execOutputCap
        self.defaultExecTimeout = defaultExecTimeout
        self.processReplayBytes = processReplayBytes
        self.ptyReplayBytes = ptyReplayBytes
        self.drainGrace = drainGrace
        self.maxClientMessage = maxClientMessage
        self.maxListEntries = maxListEntries
    }
}
