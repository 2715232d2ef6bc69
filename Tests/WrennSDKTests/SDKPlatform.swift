import Foundation
import Logging
import ServiceLifecycle
import WrennAgent
import WrennServer
import WrennTestSupport

/// A whole Wrenn installation for the SDK: a host agent (the real QEMU runtime and test image as root with
/// qemu-system-x86_64, else `EnvdBackedRuntime`) and a control plane on loopback ports, with the dev bootstrap's
/// admin account and API key.
struct SDKPlatform {
    let baseURL: String
    let apiKey: String
    /// The dev bootstrap's platform admin (template builds are admin-only).
    let adminEmail: String
    let adminPassword: String
    /// What the platform template `minimal` is on this agent.
    let template: String
    let runtimeName: String
    /// The host agent's data directory (its templates live in `templates/`).
    let agentDirectory: String

    static func logger(_ label: String) -> Logger {
        var logger = Logger(label: label)
        logger.logLevel = ProcessInfo.processInfo.environment["WRENN_TEST_SDK_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        return logger
    }

    /// Whether the agent runs real microVMs: as root with QEMU and the real envd for the image (`WRENN_TEST_ENVD`,
    /// which scripts/test.sh sets; the Python stand-in envd has no PTYs). `WRENN_TEST_SDK_RUNTIME=envd` forces the
    /// envd-backed runtime.
    static var usesQEMU: Bool {
        let environment = ProcessInfo.processInfo.environment
        return environment["WRENN_TEST_SDK_RUNTIME"] != "envd" && !(environment["WRENN_TEST_ENVD"] ?? "").isEmpty
            && TestImage.canRunQEMU
    }

    /// The QEMU agent's data directory; it outlives a run (its images link the shared test image).
    static var qemuAgentDirectory: String { TestImage.dataDirectory + "/sdk-tests" }

    /// Starts agent and control plane, runs `body`, then stops both (capsules left behind are destroyed).
    static func run(_ body: @Sendable (SDKPlatform) async throws -> Void) async throws {
        let runtime: any Runtime
        let template: String
        let agentDirectory: String
        if usesQEMU {
            let image = try await TestImage.image()
            guard let network = NetworkConfig(namePrefix: "wk-", pool: "10.205.0.0/16") else { throw LocalAgentError("bad network") }
            agentDirectory = qemuAgentDirectory
            // The control plane's platform template is `minimal` (what the SDK boots by default): here it is the
            // shared test image, linked under this agent's own images directory.
            let images = agentDirectory + "/images"
            try FileManager.default.createDirectory(atPath: images, withIntermediateDirectories: true)
            let link = images + "/minimal"
            if (try? FileManager.default.destinationOfSymbolicLink(atPath: link)) != image.directory {
                try? FileManager.default.removeItem(atPath: link)
                try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: image.directory)
            }
            runtime = QemuMicrovmRuntime(config: RuntimeConfig(dataDirectory: agentDirectory, network: network, imagesDirectory: images),
                                         logger: logger("test.sdk.runtime"))
            template = "minimal (\(TestImage.name))"
        } else {
            agentDirectory = NSTemporaryDirectory() + "wrenn-sdk-agent-" + UUID().uuidString.prefix(8).lowercased()
            runtime = EnvdBackedRuntime()
            template = "minimal"
        }
        let agentToken = "sdk-agent-token-" + UUID().uuidString
        let (agentPorts, agentPortSink) = AsyncStream<Int>.makeStream()
        let agent = AgentServer(configuration: AgentServerConfiguration(host: "127.0.0.1", port: 0, token: agentToken,
                                                                        dataDirectory: agentDirectory),
                                runtime: runtime, logger: logger("test.sdk.agent")) { port in
            agentPortSink.yield(port)
            agentPortSink.finish()
        }

        let dataDirectory = NSTemporaryDirectory() + "wrenn-sdk-cp-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dataDirectory) }

        let group = ServiceGroup(services: [agent], gracefulShutdownSignals: [], logger: logger("test.sdk.group"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var agentPortIterator = agentPorts.makeAsyncIterator()
            guard let agentPort = await agentPortIterator.next() else { throw LocalAgentError("agent did not start") }

            let config = ServerConfig(listenHost: "127.0.0.1", listenPort: 0, dataDirectory: dataDirectory,
                                      secret: String(repeating: "k", count: 40), bcryptCost: 4,
                                      agent: .init(url: "http://127.0.0.1:\(agentPort)", token: agentToken))
            let cpLogger = logger("test.sdk.cp")
            let assembly = try await ControlPlane.assemble(config: config, logger: cpLogger)
            let (cpPorts, cpPortSink) = AsyncStream<Int>.makeStream()
            let app = ControlPlane.makeApplication(assembly, host: "127.0.0.1", port: 0, logger: cpLogger) { port in
                cpPortSink.yield(port)
                cpPortSink.finish()
            }
            let cpGroup = ServiceGroup(services: [app], gracefulShutdownSignals: [], logger: cpLogger)
            tasks.addTask { try await cpGroup.run() }
            do {
                var cpPortIterator = cpPorts.makeAsyncIterator()
                guard let cpPort = await cpPortIterator.next() else { throw LocalAgentError("control plane did not start") }
                let baseURL = "http://127.0.0.1:\(cpPort)"
                guard let envPath = try await DevBootstrap(services: assembly.services, logger: cpLogger).run(baseURL: baseURL)
                else { throw LocalAgentError("dev bootstrap wrote no env file") }
                var dev: [String: String] = [:]
                for line in try String(contentsOfFile: envPath, encoding: .utf8).split(separator: "\n") where !line.hasPrefix("#") {
                    guard let eq = line.firstIndex(of: "=") else { continue }
                    dev[String(line[..<eq])] = String(line[line.index(after: eq)...])
                }
                guard let apiKey = dev["WRENN_API_KEY"], let adminEmail = dev["WRENN_ADMIN_EMAIL"], let adminPassword = dev["WRENN_ADMIN_PASSWORD"]
                else { throw LocalAgentError("dev bootstrap wrote no API key or admin account") }
                try await body(SDKPlatform(baseURL: baseURL, apiKey: apiKey, adminEmail: adminEmail, adminPassword: adminPassword,
                                           template: template, runtimeName: usesQEMU ? "qemu" : "envd-backed", agentDirectory: agentDirectory))
            } catch {
                await Self.stop(cpGroup, group, runtime)
                throw error
            }
            await Self.stop(cpGroup, group, runtime)
            try await tasks.waitForAll()
        }
        if !usesQEMU { try? FileManager.default.removeItem(atPath: agentDirectory) }
    }

    private static func stop(_ controlPlane: ServiceGroup, _ agent: ServiceGroup, _ runtime: any Runtime) async {
        await controlPlane.triggerGracefulShutdown()
        // Capsules the Python tests left (a failed test) must not outlive the run: no VM or namespace stays behind.
        for capsule in await runtime.list() { try? await runtime.destroy(capsule.id) }
        await agent.triggerGracefulShutdown()
        await (runtime as? EnvdBackedRuntime)?.shutdown()
    }
}
