import Hummingbird
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// Serves `router` on a free loopback port for the duration of `body` (which gets the base URL), then shuts it
/// down; `beforeShutdown` runs first either way (e.g. to release requests a test double is holding).
/// The shared harness of the test doubles that speak real HTTP (OAuth provider, channel receivers).
func withLoopbackServer<T: Sendable>(_ router: Router<BasicRequestContext>, label: String, logLevel: Logger.Level = .critical,
                                     beforeShutdown: @Sendable () -> Void = {},
                                     _ body: @Sendable (String) async throws -> T) async throws -> T {
    let port = NIOLockedValueBox<Int?>(nil)
    var logger = Logger(label: label)
    logger.logLevel = logLevel
    let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                          onServerRunning: { channel in port.withLockedValue { $0 = channel.localAddress?.port } }, logger: logger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        let serviceGroup = ServiceGroup(configuration: .init(services: [app], logger: logger))
        group.addTask { try await serviceGroup.run() }
        var bound: Int?
        for _ in 0..<200 {
            bound = port.withLockedValue { $0 }
            if bound != nil { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        guard let bound else { throw TestBackendError("\(label) did not start") }
        do {
            let result = try await body("http://127.0.0.1:\(bound)")
            beforeShutdown()
            await serviceGroup.triggerGracefulShutdown()
            try await group.waitForAll()
            return result
        } catch {
            beforeShutdown()
            await serviceGroup.triggerGracefulShutdown()
            try? await group.waitForAll()
            throw error
        }
    }
}
