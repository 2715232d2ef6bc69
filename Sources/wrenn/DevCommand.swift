import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import WrennAgent
import WrennImage
import WrennServer

/// `wrenn dev`: the whole platform on this machine with embedded defaults — the control plane (SQLite in the data
/// directory, mail links in the log) and a host agent running QEMU microVMs, with the default guest image built on
/// first start. On an empty installation it writes an admin account and an API key to `<data>/dev.env`.
struct DevCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev",
        abstract: "Run the platform on this machine: control plane + host agent, embedded defaults, image built if missing."
    )

    @Option(help: "Control plane listen address (host:port).") var listen: String = "127.0.0.1:8080"
    @Option(help: "Host agent listen address (host:port).") var agentListen: String = "127.0.0.1:9725"
    @Option(help: "Data directory.") var dataDir: String = "/var/lib/wrenn"
    @Flag(help: "Run the control plane only (no host agent, no image): accounts and API keys, but no capsules.") var noAgent = false
    @Flag(inversion: .prefixedNo, help: "Give capsules outbound network through this host's NAT (DNS: the host's non-loopback nameservers). Inbound new connections from capsules to the host, and capsule-to-capsule traffic, are always dropped.")
    var egress = true

    func run() async throws {
        var env = ProcessInfo.processInfo.environment
        if env["WRENN_LISTEN_ADDR"] == nil { env["WRENN_LISTEN_ADDR"] = listen }
        if env["WRENN_DIR"] == nil { env["WRENN_DIR"] = dataDir }
        let data = env["WRENN_DIR"] ?? dataDir
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        if env["WRENN_ENCRYPTION_KEY"] == nil { // notification channels' configs are encrypted with it
            env["WRENN_ENCRYPTION_KEY"] = try ChannelSettings.loadOrCreateKeyFile(dataDirectory: data)
        }
        let logger = Logging.bootstrapped(label: "wrenn.dev", level: env["LOG_LEVEL"] ?? "info")

        var services: [any Service] = []
        if !noAgent {
            guard let (agentHost, agentPort) = AgentCommand.parseAddress(agentListen) else {
                throw ValidationError("--agent-listen must be host:port")
            }
            let token = try Self.agentToken(dataDirectory: data)
            env["WRENN_AGENT_URL"] = "http://\(agentHost):\(agentPort)"
            env["WRENN_AGENT_TOKEN"] = token
            try await Self.ensureImage(dataDirectory: data, logger: logger)
            guard let network = NetworkConfig() else { throw ValidationError("invalid default network configuration") }
            var runtimeConfig = RuntimeConfig(dataDirectory: data, network: network)
            runtimeConfig.egressDefault = egress
            let runtime = QemuMicrovmRuntime(config: runtimeConfig, logger: Logger(label: "wrenn.runtime"))
            let controlPlane = "http://" + (env["WRENN_LISTEN_ADDR"] ?? listen).replacingOccurrences(of: "0.0.0.0", with: "127.0.0.1")
            services.append(AgentServer(
                configuration: AgentServerConfiguration(host: agentHost, port: agentPort, token: token, dataDirectory: data,
                                                        controlPlaneURL: controlPlane, controlPlaneToken: token),
                runtime: runtime, logger: Logger(label: "wrenn.agent")))
        }
        let config = try ServerConfig.fromEnvironment(env)
        services.append(try await ControlPlane.makeService(config: config, logger: logger, devBootstrap: true))
        try await ServiceGroup(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
    }

    /// The shared control plane ↔ agent token, created once in `<data>/agent-token` (mode 0600).
    static func agentToken(dataDirectory: String) throws -> String {
        let path = dataDirectory + "/agent-token"
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if token.count >= 32 { return token }
        }
        var generator = SystemRandomNumberGenerator()
        let token = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
        guard FileManager.default.createFile(atPath: path, contents: Data((token + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
            throw ValidationError("cannot write \(path)")
        }
        return token
    }

    /// Builds the default guest image when it is not there yet (minutes the first time; reused afterwards).
    static func ensureImage(dataDirectory: String, logger: Logger) async throws {
        guard let envd = ImageBuildConfig.findEnvdBinary() else {
            throw ValidationError("wrenn-envd not found next to wrenn: build it with `swift build -c release --static-swift-stdlib --product wrenn-envd`")
        }
        let builder = ImageBuilder(ImageBuildConfig(dataDirectory: dataDirectory, envdBinary: envd), logger: logger)
        _ = try await builder.build(name: "minimal") // the builder logs its own progress
    }
}
