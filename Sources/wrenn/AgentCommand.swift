import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import WrennAgent

/// `wrenn agent`: the host agent (runs as root), serving the agent API to the control plane.
struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Run the host agent: capsules on this machine (QEMU microVMs) behind the agent API.",
        discussion: """
        Environment: WRENN_AGENT_LISTEN_ADDR (host:port, default 127.0.0.1:9725), WRENN_AGENT_TOKEN (bearer token \
        the control plane sends; required unless --token-file), WRENN_DIR (data directory, default /var/lib/wrenn), \
        WRENN_CP_URL (control plane base URL for sandbox events; unset = events are only logged), \
        WRENN_NETWORK_POOL (capsule slot pool, default 10.200.0.0/16) and WRENN_NETWORK_PREFIX (namespace/veth \
        prefix, default wrenn-; stale ones of this prefix are removed at start), WRENN_LOG_LEVEL (default info).

        Registration: `--register TOKEN --address ip:port` (token from POST /v1/hosts, WRENN_CP_URL required) exchanges         the token for a host JWT and refresh token, saved in <data>/agent/host-credentials.json (0600); later starts         reuse them (refreshing before expiry), heartbeat every 30 s, and no WRENN_AGENT_TOKEN is needed.
        """
    )

    @Option(help: "Read the agent token from this file (first line) instead of WRENN_AGENT_TOKEN.")
    var tokenFile: String?

    @Option(help: "Listen address host:port (overrides WRENN_AGENT_LISTEN_ADDR).")
    var listen: String?

    @Option(help: "Data directory (overrides WRENN_DIR).")
    var dataDir: String?

    @Flag(inversion: .prefixedNo, help: "Give capsules outbound network through this host's NAT (DNS: the host's non-loopback nameservers). Inbound new connections from capsules to the host, and capsule-to-capsule traffic, are always dropped.")
    var egress = true

    @Option(help: "Register with the control plane at WRENN_CP_URL using this one-time token (from POST /v1/hosts).")
    var register: String?

    @Option(help: "Address the control plane reaches this agent at, ip:port (default: the listen address).")
    var address: String?

    @Option(help: "Seconds between heartbeats to the control plane when registered.")
    var heartbeatInterval: Int = 30

    func run() async throws {
        let env = ProcessInfo.processInfo.environment
        let logger = Logging.bootstrapped(label: "wrenn.agent", level: env["WRENN_LOG_LEVEL"] ?? "info")
        let address = listen ?? env["WRENN_AGENT_LISTEN_ADDR"] ?? "127.0.0.1:9725"
        guard let (host, port) = Self.parseAddress(address) else {
            throw ValidationError("listen address must be host:port, got '\(address)'")
        }
        let dataDirectory = dataDir ?? env["WRENN_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/var/lib/wrenn"
        let controlPlane = env["WRENN_CP_URL"].flatMap { $0.isEmpty ? nil : $0 }
        let session = try await registration(controlPlane: controlPlane, dataDirectory: dataDirectory, listen: address, logger: logger)
        let token = try session?.agentToken ?? Self.token(file: tokenFile, environment: env)
        let pool = env["WRENN_NETWORK_POOL"].flatMap { $0.isEmpty ? nil : $0 } ?? "10.200.0.0/16"
        let prefix = env["WRENN_NETWORK_PREFIX"].flatMap { $0.isEmpty ? nil : $0 } ?? "wrenn-"
        guard let network = NetworkConfig(namePrefix: prefix, pool: pool) else {
            throw ValidationError("WRENN_NETWORK_POOL must be an IPv4 CIDR (/8–/28) and WRENN_NETWORK_PREFIX at most 6 letters, digits or '-'")
        }
        var runtimeConfig = RuntimeConfig(dataDirectory: dataDirectory, network: network)
        runtimeConfig.egressDefault = egress
        let runtime = QemuMicrovmRuntime(config: runtimeConfig, logger: Logger(label: "wrenn.runtime"))
        var configuration = AgentServerConfiguration(host: host, port: port, token: token, dataDirectory: dataDirectory,
                                                     controlPlaneURL: controlPlane)
        configuration.hostSession = session
        configuration.heartbeatInterval = .seconds(max(1, heartbeatInterval))
        let agent = AgentServer(configuration: configuration, runtime: runtime, logger: logger)
        try await ServiceGroup(services: [agent], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
    }

    /// The agent's registration: a new one with `--register`, else saved credentials if there are any (nil: the
    /// shared-token setup).
    func registration(controlPlane: String?, dataDirectory: String, listen: String, logger: Logger) async throws -> HostSession? {
        let saved = FileManager.default.fileExists(atPath: HostCredentials.path(dataDirectory: dataDirectory))
        guard register != nil || saved else { return nil }
        guard let controlPlane else { throw ValidationError("registration needs WRENN_CP_URL (the control plane's base URL)") }
        let advertised = address ?? listen
        guard let (host, _) = Self.parseAddress(advertised), !["0.0.0.0", "::"].contains(host) else {
            throw ValidationError("pass --address ip:port: the control plane cannot reach '\(advertised)'")
        }
        do {
            return try await HostSession.establish(controlPlaneURL: controlPlane, dataDirectory: dataDirectory, registrationToken: register,
                                                   address: advertised, logger: logger)
        } catch let error as RegistrationError {
            throw ValidationError(error.description)
        }
    }

    /// The token from `--token-file` (first line, trimmed) or `WRENN_AGENT_TOKEN`.
    static func token(file: String?, environment: [String: String]) throws -> String {
        if let file {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw ValidationError("cannot read token file \(file)")
            }
            let token = text.split(separator: "\n").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            guard !token.isEmpty else { throw ValidationError("token file \(file) is empty") }
            return token
        }
        guard let token = environment["WRENN_AGENT_TOKEN"]?.trimmingCharacters(in: .whitespacesAndNewlines), !token.isEmpty else {
            throw ValidationError("set WRENN_AGENT_TOKEN or pass --token-file")
        }
        return token
    }

    /// `host:port` or `[v6]:port`.
    static func parseAddress(_ text: String) -> (String, Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            return nil
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : (host, port)
    }
}
