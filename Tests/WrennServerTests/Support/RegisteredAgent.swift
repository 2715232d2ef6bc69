import Foundation
import Logging
import ServiceLifecycle
import WrennAgent
import WrennTestSupport

/// A real host agent on its own loopback port that registered with a control plane (`HostSession`), heartbeating
/// on a short interval, over an `EnvdBackedRuntime`. `stop()` ends the agent process-like (its capsules keep
/// running, as VMs outlive an agent); `restart()` starts it again on the same port, data directory and runtime,
/// reusing the saved credentials.
final class RegisteredAgent: @unchecked Sendable {
    let controlPlaneURL: String
    let port: Int
    let dataDirectory: String
    let runtime: EnvdBackedRuntime
    let heartbeat: Duration
    private let lock = NSLock()
    private var running: (ServiceGroup, Task<Void, any Error>)?
    private(set) var session: HostSession?

    var hostID: String { session?.hostID ?? "" }
    var address: String { "127.0.0.1:\(port)" }

    private init(controlPlaneURL: String, port: Int, dataDirectory: String, runtime: EnvdBackedRuntime, heartbeat: Duration) {
        self.controlPlaneURL = controlPlaneURL; self.port = port; self.dataDirectory = dataDirectory; self.runtime = runtime
        self.heartbeat = heartbeat
    }

    /// Registers with `registrationToken` (advertising `facts`) and starts serving.
    static func start(controlPlaneURL: String, registrationToken: String, facts: HostSession.Facts,
                      heartbeat: Duration = .milliseconds(200)) async throws -> RegisteredAgent {
        let directory = NSTemporaryDirectory() + "wrenn-reg-agent-" + UUID().uuidString.prefix(8).lowercased()
        let agent = RegisteredAgent(controlPlaneURL: controlPlaneURL, port: try freeLoopbackPort(), dataDirectory: directory,
                                    runtime: EnvdBackedRuntime(), heartbeat: heartbeat)
        try await agent.launch(registrationToken: registrationToken, facts: facts)
        return agent
    }

    /// Starts again after `stop()`, with the saved credentials.
    func restart() async throws { try await launch(registrationToken: nil, facts: .init()) }

    private func launch(registrationToken: String?, facts: HostSession.Facts) async throws {
        var logger = Logger(label: "test.registered-agent")
        logger.logLevel = .critical
        let session = try await HostSession.establish(controlPlaneURL: controlPlaneURL, dataDirectory: dataDirectory,
                                                      registrationToken: registrationToken, address: address, facts: facts, logger: logger)
        var configuration = AgentServerConfiguration(host: "127.0.0.1", port: port, token: session.agentToken, dataDirectory: dataDirectory,
                                                     controlPlaneURL: controlPlaneURL)
        configuration.hostSession = session
        configuration.heartbeatInterval = heartbeat
        configuration.reaperInterval = .milliseconds(100)
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let server = AgentServer(configuration: configuration, runtime: runtime, logger: logger) { port in
            continuation.yield(port)
            continuation.finish()
        }
        let group = ServiceGroup(services: [server], gracefulShutdownSignals: [], logger: logger)
        let task = Task { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        guard await iterator.next() != nil else {
            task.cancel()
            throw LocalAgentError("registered agent did not start")
        }
        lock.withLock {
            running = (group, task)
            self.session = session
        }
    }

    /// Stops the agent (no more heartbeats, port closed); capsules stay in the runtime.
    func stop() async {
        guard let (group, task) = lock.withLock({ () -> (ServiceGroup, Task<Void, any Error>)? in
            defer { running = nil }
            return running
        }) else { return }
        await group.triggerGracefulShutdown()
        _ = await task.result
    }

    /// Stops the agent and every capsule, and removes its data directory.
    func destroy() async {
        await stop()
        await runtime.shutdown()
        try? FileManager.default.removeItem(atPath: dataDirectory)
    }

    /// A loopback TCP port that was free a moment ago.
    static func freeLoopbackPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw LocalAgentError("socket failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0 else { throw LocalAgentError("bind failed") }
        let named = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        guard named == 0 else { throw LocalAgentError("getsockname failed") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
