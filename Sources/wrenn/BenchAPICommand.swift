import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import WrennAgent
import WrennServer

extension BenchCommand {
    /// `wrenn bench api`: control plane overhead over the agent (create → first exec, exec round trip) and list
    /// throughput. Brings up its own agent (QEMU) and control plane in a temporary data directory unless `--url`
    /// points at a running one.
    struct API: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "api",
            abstract: "Control plane vs agent: create → first exec, exec round trip, GET /v1/capsules throughput."
        )

        @Option(help: "Control plane to measure (default: start one with an agent in a temporary directory).") var url: String?
        @Option(help: "API key for --url (default: $WRENN_API_KEY).") var apiKey: String?
        @Option(help: "Agent for the direct figures, with --url.") var agentURL: String?
        @Option(help: "Agent token for --agent-url (default: $WRENN_AGENT_TOKEN).") var agentToken: String?
        @Option(help: "Built images for the agent this command starts (default: $WRENN_DIR/images or /var/lib/wrenn/images).") var imagesDir: String?
        @Option(help: "Image or template.") var template: String = "minimal"
        @Option(help: "Creates per figure.") var creates: Int = 10
        @Option(help: "Execs per figure.") var execs: Int = 300
        @Option(help: "Connections for the list throughput.") var concurrency: Int = 64
        @Option(help: "Seconds of list throughput.") var seconds: Int = 5

        func run() async throws {
            let logger = Logging.bootstrapped(label: "wrenn.bench", level: "warning")
            let env = ProcessInfo.processInfo.environment
            if let url {
                guard let key = apiKey ?? env["WRENN_API_KEY"] else { throw ValidationError("--url needs --api-key or WRENN_API_KEY") }
                try await measure(url: url, key: key, agentURL: agentURL, agentToken: agentToken ?? env["WRENN_AGENT_TOKEN"])
                return
            }
            let images = imagesDir ?? (env["WRENN_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/var/lib/wrenn") + "/images"
            guard FileManager.default.fileExists(atPath: images + "/" + template) else {
                throw ValidationError("no image \(template) in \(images): build one with `wrenn dev` or `wrenn image build`, or pass --images-dir")
            }
            let data = NSTemporaryDirectory() + "wrenn-bench-api-" + UUID().uuidString.prefix(8).lowercased()
            try FileManager.default.createDirectory(atPath: data + "/cp", withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: data) }

            // Its own name prefix and pool: a runtime's start() reclaims stale namespaces of its prefix.
            guard let network = NetworkConfig(namePrefix: "wba-", pool: "10.204.0.0/16") else { throw ValidationError("bad network") }
            let runtime = QemuMicrovmRuntime(config: RuntimeConfig(dataDirectory: data + "/agent", network: network, imagesDirectory: images),
                                             logger: logger)
            let token = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
            let (ports, continuation) = AsyncStream<Int>.makeStream()
            let agent = AgentServer(configuration: AgentServerConfiguration(host: "127.0.0.1", port: 0, token: token, dataDirectory: data + "/agent"),
                                    runtime: runtime, logger: logger) { port in continuation.yield(port); continuation.finish() }
            let agentGroup = ServiceGroup(services: [agent], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
            let agentTask = Task { try await agentGroup.run() }
            var iterator = ports.makeAsyncIterator()
            guard let agentPort = await iterator.next() else { throw ValidationError("the agent did not start") }
            let agentBase = "http://127.0.0.1:\(agentPort)"

            let config = ServerConfig(listenHost: "127.0.0.1", listenPort: 0, dataDirectory: data + "/cp", publicURL: "http://127.0.0.1",
                                      secret: token + token, bcryptCost: 4, agent: .init(url: agentBase, token: token), logLevel: "warning")
            let controlPlane = try await ControlPlane.makeService(config: config, logger: logger, devBootstrap: true)
            let cpGroup = ServiceGroup(services: [controlPlane], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
            let cpTask = Task { try await cpGroup.run() }
            var result: Result<Void, any Error> = .success(())
            do {
                let (base, key) = try await Self.devEnv(data + "/cp/dev.env")
                print("control plane \(base), agent \(agentBase), images \(images)")
                try await measure(url: base, key: key, agentURL: agentBase, agentToken: token)
            } catch {
                result = .failure(error)
            }
            await cpGroup.triggerGracefulShutdown()
            _ = await cpTask.result
            for info in await runtime.list() { try? await runtime.destroy(info.id) }
            await agentGroup.triggerGracefulShutdown()
            _ = await agentTask.result
            try result.get()
        }

        func measure(url: String, key: String, agentURL: String?, agentToken: String?) async throws {
            var bench = APIBenchmark(controlPlaneURL: url, apiKey: key, agentURL: agentURL, agentToken: agentToken)
            bench.template = template
            bench.creates = max(1, creates)
            bench.execs = max(1, execs)
            bench.concurrency = max(1, concurrency)
            bench.duration = .seconds(max(1, seconds))
            let report = try await bench.run { print("… \($0)") }
            print(report.text)
        }

        /// The base URL and API key the dev bootstrap writes once the control plane listens.
        static func devEnv(_ path: String) async throws -> (String, String) {
            let deadline = ContinuousClock.now + .seconds(60)
            while ContinuousClock.now < deadline {
                if let text = try? String(contentsOfFile: path, encoding: .utf8) {
                    var base: String?, key: String?
                    for line in text.split(separator: "\n") {
                        if line.hasPrefix("WRENN_BASE_URL=") { base = String(line.dropFirst("WRENN_BASE_URL=".count)) }
                        if line.hasPrefix("WRENN_API_KEY=") { key = String(line.dropFirst("WRENN_API_KEY=".count)) }
                    }
                    if let base, let key { return (base, key) }
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            throw ValidationError("the control plane did not write \(path)")
        }
    }
}
