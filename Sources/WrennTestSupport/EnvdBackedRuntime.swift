import Foundation
import Logging
import WrennAgent
import WrennEnvd

/// A `Runtime` without virtualization, for tests of everything above the runtime: every capsule is a REAL envd
/// (`EnvdServer`) on a loopback port, started in-process with the token the agent hands over. Pause/resume only flip
/// the state (the agent must refuse to proxy to a paused capsule on its own); destroy stops that envd. Capsules share
/// the host's filesystem, so it isolates nothing: never use it outside tests.
public actor EnvdBackedRuntime: Runtime {
    struct Capsule {
        var info: CapsuleInfo
        var server: Task<Void, any Error>
    }

    private var capsules: [String: Capsule] = [:]
    public private(set) var startCount = 0
    private let logger: Logger = {
        var logger = Logger(label: "test.envd")
        logger.logLevel = .critical
        return logger
    }()

    /// What `pause` asks the guest first, as the QEMU runtime does (`prepareForSave`); nil skips it.
    private let guest: (any GuestAgent)?
    /// When set, new capsules report this loopback port as their envd (a hostile stand-in; their real envd runs on).
    private var envdPortOverride: Int?

    public init(guest: (any GuestAgent)? = nil) {
        self.guest = guest
    }

    /// Capsules created from now on point at `port` on loopback for envd (nil: their own envd again).
    public func pointNewCapsulesAt(envdPort port: Int?) {
        envdPortOverride = port
    }

    /// Capsule `id` reports `port` on loopback as its envd from now on.
    public func redirectEnvd(_ id: String, toPort port: Int) {
        capsules[id]?.info.envdPort = port
    }

    public func start() async throws { startCount += 1 }

    public func create(_ request: CapsuleRequest) async throws -> CapsuleInfo {
        guard request.id.range(of: "^[a-z0-9][a-z0-9._-]{0,63}$", options: .regularExpression) != nil else {
            throw RuntimeError.invalidRequest("bad id")
        }
        guard capsules[request.id] == nil else { throw RuntimeError.alreadyExists(request.id) }
        guard request.template != "missing" else { throw RuntimeError.templateNotFound(request.template) }
        let token = request.accessToken ?? "template-token"
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let server = EnvdServer(
            configuration: EnvdConfiguration(host: "127.0.0.1", port: 0, accessToken: token, capsuleID: request.id),
            logger: logger,
            onListening: { port in
                continuation.yield(port)
                continuation.finish()
            })
        // Detached: the envd must not inherit the agent's graceful-shutdown context (a real VM outlives the agent).
        let task = Task.detached { try await server.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            task.cancel()
            throw RuntimeError.guestNotReady("envd did not start")
        }
        let info = CapsuleInfo(
            id: request.id, template: request.template, state: .running, vcpus: request.vcpus, memoryMiB: request.memoryMiB,
            diskMiB: request.diskMiB, slot: capsules.count + 1, envdHost: "127.0.0.1", envdPort: envdPortOverride ?? port, pid: nil,
            accessToken: token, accelerator: .tcg, lastError: nil)
        capsules[request.id] = Capsule(info: info, server: task)
        return info
    }

    public func pause(_ id: String) async throws -> CapsuleInfo {
        if let guest, let info = capsules[id]?.info, info.state == .running {
            // Like the QEMU runtime: a failed prepare is logged, the pause goes on.
            do { try await guest.prepareForSave(host: info.envdHost, port: info.envdPort, token: info.accessToken ?? "") } catch {
                logger.warning("envd prepare failed before pause", metadata: ["id": "\(id)", "error": "\(error)"])
            }
        }
        return try transition(id, from: .running, to: .paused, operation: "pause")
    }

    public func resume(_ id: String) async throws -> CapsuleInfo {
        try transition(id, from: .paused, to: .running, operation: "resume")
    }

    private func transition(_ id: String, from: CapsuleState, to: CapsuleState, operation: String) throws -> CapsuleInfo {
        guard var capsule = capsules[id] else { throw RuntimeError.notFound(id) }
        guard capsule.info.state == from else {
            throw RuntimeError.invalidState(id: id, state: capsule.info.state.rawValue, operation: operation)
        }
        capsule.info.state = to
        capsules[id] = capsule
        return capsule.info
    }

    public func snapshot(_ id: String, as template: String) async throws -> TemplateInfo {
        guard let capsule = capsules[id] else { throw RuntimeError.notFound(id) }
        return TemplateInfo(name: template, image: capsule.info.template, kind: .snapshot, vcpus: capsule.info.vcpus,
                            memoryMiB: capsule.info.memoryMiB)
    }

    public func destroy(_ id: String) async throws {
        capsules.removeValue(forKey: id)?.server.cancel()
    }

    public func deleteTemplate(_ name: String) async throws {}

    public func list() async -> [CapsuleInfo] { capsules.values.map(\.info).sorted { $0.id < $1.id } }

    public func info(_ id: String) async throws -> CapsuleInfo {
        guard let capsule = capsules[id] else { throw RuntimeError.notFound(id) }
        return capsule.info
    }

    /// Pretends `pid` is the capsule's VMM (the crash watcher checks it).
    public func setPID(_ id: String, _ pid: Int32) {
        capsules[id]?.info.pid = pid
    }

    /// Stops every envd (end of a test).
    public func shutdown() {
        for capsule in capsules.values { capsule.server.cancel() }
        capsules.removeAll()
    }
}
