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

    func run() async throws {
        let env = ProcessInfo.processInfo.environment
        let logger = Logging.bootstrapped(label: "wrenn.agent", level: env["WRENN_LOG_LEVEL"] ?? "info")
        let token = try Self.token(file: tokenFile, environment: env)
        let address = listen ?? env["WRENN_AGENT_LISTEN_ADDR"] ?? "127.0.0.1:9725"
        guard let (host, port) = Self.parseAddress(address) else {
            throw ValidationError("listen address must be host:port, got '\(address)'")
        }
        let dataDirectory = dataDir ?? env["WRENN_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/var/lib/wrenn"
        let pool = env["WRENN_NETWORK_POOL"].flatMap { $0.isEmpty ? nil : $0 } ?? "10.200.0.0/16"
        let prefix = env["WRENN_NETWORK_PREFIX"].flatMap { $0.isEmpty ? nil : $0 } ?? "wrenn-"
        guard let network = NetworkConfig(namePrefix: prefix, pool: pool) else {
            throw ValidationError("WRENN_NETWORK_POOL must be an IPv4 CIDR (/8–/28) and WRENN_NETWORK_PREFIX at most 6 letters, digits or '-'")
        }
        var runtimeConfig = RuntimeConfig(dataDirectory: dataDirectory, network: network)
        runtimeConfig.egressDefault = egress
        let runtime = QemuMicrovmRuntime(config: runtimeConfig, logger: Logger(label: "wrenn.runtime"))
        let agent = AgentServer(
            configuration: AgentServerConfiguration(
                host: host, port: port, token: token, dataDirectory: dataDirectory,
                controlPlaneURL: env["WRENN_CP_URL"].flatMap { $0.isEmpty ? nil : $0 }),
            runtime: runtime, logger: logger)
        try await ServiceGroup(services: [agent], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
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
