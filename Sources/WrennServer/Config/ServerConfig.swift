import Foundation
import WrennImage

/// Everything `wrenn serve` reads from its environment (and an optional `.env` file; the real environment wins).
///
/// Defaults work on a laptop: SQLite in the data directory, listening on 127.0.0.1:8080, mail to the outbox table.
public struct ServerConfig: Sendable {
    public var listenHost: String
    public var listenPort: Int
    /// Data directory: the SQLite file, the generated secret, logs.
    public var dataDirectory: String
    /// `postgres://…` for PostgreSQL; anything else is an SQLite path (`sqlite://PATH`, a path, or `:memory:`).
    public var databaseURL: String
    /// Where this control plane is reachable (OAuth callback base; `Secure` cookies when https).
    public var publicURL: String
    /// Base of the dashboard for links in emails and OAuth redirects.
    public var frontendURL: String
    /// HMAC key material for OAuth state cookies (≥ 32 chars). Generated into the data directory when unset.
    public var secret: String
    public var smtp: SMTPSettings?
    public var github: OAuthProviderSettings?
    /// bcrypt cost for passwords (12 in production; tests may lower it).
    public var bcryptCost: UInt8
    /// The host agent capsules run on (`WRENN_AGENT_URL` + `WRENN_AGENT_TOKEN`); nil = no capsules can start.
    public var agent: AgentSettings?
    public var logLevel: String
    /// Host monitor timing: check interval and heartbeat timeout (90 s).
    public var hostMonitor = HostMonitorSettings()
    /// How often the stats sampler records each team's reservation (`GET /v1/capsules/stats`).
    public var statsSampleInterval: Duration = .seconds(10)
    /// How often the capsules' status history is rolled up into daily usage (`GET /v1/capsules/usage`).
    public var usageRollupInterval: Duration = .seconds(3600)
    /// How often the server pings each WebSocket client; one that has not answered by the next ping is dropped.
    public var webSocketPingInterval: Duration = .seconds(30)
    /// Host suffix of the port proxy, `{port}-{capsule_id}.<domain>` (`WRENN_PROXY_DOMAIN`); nil = the public URL's host.
    public var proxyDomain: String? = nil
    /// Notification channels: encryption key for their configs, Telegram API base, delivery timing.
    public var channels: ChannelSettings
    /// The HTTP edge's rules and limits (allowed origins, per-team concurrency, upload spool, idle timeout).
    public var edge = EdgeSettings()

    /// SMTP delivery settings; nil means "no SMTP: write mails to the outbox table and log the link".
    public struct SMTPSettings: Sendable {
        public var host: String
        public var port: Int
        public var username: String?
        public var password: String?
        public var fromAddress: String
        public var requireTLS: Bool
        public init(host: String, port: Int, username: String?, password: String?, fromAddress: String, requireTLS: Bool) {
            self.host = host; self.port = port; self.username = username; self.password = password
            self.fromAddress = fromAddress; self.requireTLS = requireTLS
        }
    }

    /// How to reach a host agent.
    public struct AgentSettings: Sendable {
        public var url: String
        public var token: String
        public init(url: String, token: String) { self.url = url; self.token = token }
    }

    /// An OAuth2 provider's client credentials and endpoints (configurable so tests can run a local provider).
    public struct OAuthProviderSettings: Sendable {
        public var clientID: String
        public var clientSecret: String
        public var authorizeURL: String
        public var tokenURL: String
        public var apiURL: String
        public init(clientID: String, clientSecret: String, authorizeURL: String = "https://github.com/login/oauth/authorize",
                    tokenURL: String = "https://github.com/login/oauth/access_token", apiURL: String = "https://api.github.com") {
            self.clientID = clientID; self.clientSecret = clientSecret
            self.authorizeURL = authorizeURL; self.tokenURL = tokenURL; self.apiURL = apiURL
        }
    }

    public init(listenHost: String = "127.0.0.1", listenPort: Int = 8080, dataDirectory: String, databaseURL: String? = nil,
                publicURL: String = "http://localhost:8080", frontendURL: String? = nil, secret: String,
                smtp: SMTPSettings? = nil, github: OAuthProviderSettings? = nil, bcryptCost: UInt8 = 12, agent: AgentSettings? = nil,
                logLevel: String = "info", channels: ChannelSettings = ChannelSettings()) {
        self.listenHost = listenHost
        self.listenPort = listenPort
        self.dataDirectory = dataDirectory
        self.databaseURL = databaseURL ?? "sqlite://" + (dataDirectory as NSString).appendingPathComponent("wrenn.db")
        self.publicURL = publicURL
        self.frontendURL = frontendURL ?? publicURL
        self.secret = secret
        self.smtp = smtp
        self.github = github
        self.bcryptCost = bcryptCost
        self.agent = agent
        self.logLevel = logLevel
        self.channels = channels
    }

    /// Whether session cookies get the `Secure` attribute (everything but a plain-http public URL).
    public var secureCookies: Bool { !publicURL.lowercased().hasPrefix("http://") }

    /// Reads the configuration from `environment` merged over the `.env` file in the working directory, if any.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment,
                                       dotEnvPath: String = ".env") throws -> ServerConfig {
        var env = DotEnv.load(path: dotEnvPath)
        env.merge(environment) { _, real in real }
        func value(_ names: String...) -> String? {
            for n in names { if let v = env[n], !v.isEmpty { return v } }
            return nil
        }
        let listen = value("WRENN_LISTEN_ADDR", "WRENN_CP_LISTEN_ADDR") ?? "127.0.0.1:8080"
        let (host, port) = try parseListenAddress(listen)
        let dataDir = value("WRENN_DIR") ?? "/var/lib/wrenn"
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
        let secret = try value("WRENN_SECRET", "JWT_SECRET") ?? loadOrCreateSecret(dataDirectory: dataDir)
        guard secret.count >= 32 else { throw ConfigError("WRENN_SECRET must be at least 32 characters") }
        let publicURL = value("WRENN_PUBLIC_URL", "CP_PUBLIC_URL") ?? "http://localhost:\(port)"
        var smtp: SMTPSettings?
        if let smtpHost = value("SMTP_HOST") {
            let smtpPort = Int(value("SMTP_PORT") ?? "587") ?? 587
            smtp = SMTPSettings(host: smtpHost, port: smtpPort, username: value("SMTP_USERNAME"), password: value("SMTP_PASSWORD"),
                                fromAddress: value("SMTP_FROM_EMAIL") ?? "noreply@wrenn.dev",
                                requireTLS: (value("SMTP_REQUIRE_TLS") ?? "false") == "true")
        }
        var github: OAuthProviderSettings?
        if let id = value("OAUTH_GITHUB_CLIENT_ID"), let secret = value("OAUTH_GITHUB_CLIENT_SECRET") {
            var g = OAuthProviderSettings(clientID: id, clientSecret: secret)
            if let v = value("OAUTH_GITHUB_AUTHORIZE_URL") { g.authorizeURL = v }
            if let v = value("OAUTH_GITHUB_TOKEN_URL") { g.tokenURL = v }
            if let v = value("OAUTH_GITHUB_API_URL") { g.apiURL = v }
            github = g
        }
        var agent: AgentSettings?
        if let url = value("WRENN_AGENT_URL") {
            guard let token = value("WRENN_AGENT_TOKEN"), token.count >= 32 else {
                throw ConfigError("WRENN_AGENT_URL needs WRENN_AGENT_TOKEN (at least 32 characters)")
            }
            agent = AgentSettings(url: url, token: token)
        }
        var cost: UInt8 = 12
        if let c = value("WRENN_BCRYPT_COST") {
            guard let parsed = UInt8(c), (4...31).contains(parsed) else { throw ConfigError("WRENN_BCRYPT_COST must be 4…31") }
            cost = parsed
        }
        var channels = ChannelSettings()
        if let key = value("WRENN_ENCRYPTION_KEY") { channels.encryptionKey = try ChannelSettings.parseKey(key) }
        if let telegram = value("WRENN_TELEGRAM_API_URL") { channels.telegramAPIURL = telegram }
        if let allow = value("WRENN_CHANNELS_ALLOW_PRIVATE") { channels.allowPrivateReceivers = ["1", "true", "yes"].contains(allow.lowercased()) }
        var config = ServerConfig(listenHost: host, listenPort: port, dataDirectory: dataDir, databaseURL: value("DATABASE_URL"),
                            publicURL: publicURL, frontendURL: value("OAUTH_REDIRECT_URL", "WRENN_FRONTEND_URL"), secret: secret,
                            smtp: smtp, github: github, bcryptCost: cost, agent: agent, logLevel: value("LOG_LEVEL") ?? "info",
                            channels: channels)
        config.proxyDomain = value("WRENN_PROXY_DOMAIN")
        config.edge = try EdgeSettings.fromEnvironment(env)
        if let v = value("WRENN_STATS_SAMPLE_SECONDS") {
            guard let seconds = Double(v), (0.05...3600).contains(seconds) else {
                throw ConfigError("WRENN_STATS_SAMPLE_SECONDS must be a number of seconds, 0.05…3600")
            }
            config.statsSampleInterval = .milliseconds(Int64(seconds * 1000))
        }
        return config
    }

    /// Splits `host:port` (`:8080` means all interfaces).
    static func parseListenAddress(_ text: String) throws -> (String, Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw ConfigError("listen address must be host:port, got \(text)")
        }
        let host = String(text[..<colon])
        return (host.isEmpty ? "0.0.0.0" : host, port)
    }

    /// The secret persisted in `<data>/secret` (mode 0600), created on first start.
    static func loadOrCreateSecret(dataDirectory: String) throws -> String {
        let path = (dataDirectory as NSString).appendingPathComponent("secret")
        if let existing = try? String(contentsOfFile: path, encoding: .utf8) {
            let trimmed = existing.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.count >= 32 { return trimmed }
        }
        let secret = Secrets.randomHex(bytes: 32)
        do { try DurableFile.write(Data(secret.utf8), to: path, permissions: 0o600) } catch {
            throw ConfigError("cannot write \(path): \(error)")
        }
        return secret
    }
}

/// A configuration problem, reported before the server starts.
public struct ConfigError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// Minimal `.env` reader: `KEY=VALUE` lines, `#` comments, optional `export `, single or double quotes.
enum DotEnv {
    static func load(path: String) -> [String: String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [:] }
        var result: [String: String] = [:]
        for rawLine in text.split(whereSeparator: \.isNewline) {
            var line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line.removeFirst("export ".count) }
            guard let eq = line.firstIndex(of: "=") else { continue }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces)
            var value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, let f = value.first, f == "\"" || f == "'", value.last == f {
                value = String(value.dropFirst().dropLast())
            }
            result[key] = value
        }
        return result
    }
}
