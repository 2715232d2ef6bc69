import Foundation
import Logging
import ServiceLifecycle
import WrennAgent
import WrennPKI

/// A real `AgentServer` on a loopback port over `EnvdBackedRuntime`, for tests of the control plane and above.
public final class LocalAgent: Sendable {
    public let token: String
    public let port: Int
    public let dataDirectory: String
    public let runtime: EnvdBackedRuntime
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    public var baseURL: String { "http://127.0.0.1:\(port)" }

    private init(token: String, port: Int, dataDirectory: String, runtime: EnvdBackedRuntime, group: ServiceGroup, task: Task<Void, any Error>) {
        self.token = token; self.port = port; self.dataDirectory = dataDirectory; self.runtime = runtime
        self.group = group; self.task = task
    }

    /// Starts an agent with a fresh data directory; `controlPlaneURL` receives its sandbox events; with `tls` it
    /// serves mutual TLS only (then `baseURL`'s scheme is `https`).
    public static func start(controlPlaneURL: String? = nil, tls: RenewableServerIdentity? = nil,
                             runtime: EnvdBackedRuntime = EnvdBackedRuntime()) async throws -> LocalAgent {
        let directory = NSTemporaryDirectory() + "wrenn-local-agent-" + UUID().uuidString.prefix(8).lowercased()
        let token = "local-agent-token-" + UUID().uuidString
        var logger = Logger(label: "test.agent")
        logger.logLevel = .critical
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        var configuration = AgentServerConfiguration(host: "127.0.0.1", port: 0, token: token, dataDirectory: directory,
                                                     controlPlaneURL: controlPlaneURL)
        configuration.tls = tls
        let server = AgentServer(configuration: configuration, runtime: runtime, logger: logger) { port in
            continuation.yield(port)
            continuation.finish()
        }
        let group = ServiceGroup(services: [server], gracefulShutdownSignals: [], logger: logger)
        let task = Task { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            task.cancel()
            throw LocalAgentError("agent did not start")
        }
        return LocalAgent(token: token, port: port, dataDirectory: directory, runtime: runtime, group: group, task: task)
    }

    /// Stops the agent and every envd, and removes its data directory.
    public func stop() async {
        await group.triggerGracefulShutdown()
        _ = await task.result
        await runtime.shutdown()
        try? FileManager.default.removeItem(atPath: dataDirectory)
    }
}

/// A test-support failure.
public struct LocalAgentError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
