import Foundation
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import ServiceLifecycle
import WrennHTTP

/// envd as a swift-service-lifecycle `Service`: HTTP/1.1 + WebSocket on one port.
///
/// ```swift
/// let server = EnvdServer(configuration: .init(host: "0.0.0.0", accessToken: token), logger: logger)
/// try await ServiceGroup(services: [server], gracefulShutdownSignals: [.sigterm], logger: logger).run()
/// ```
/// On graceful shutdown it stops accepting connections and kills the process groups it started.
public struct EnvdServer: Service {
    /// The configuration it was built with.
    public let configuration: EnvdConfiguration
    private let logger: Logger
    private let onListening: @Sendable (Int) async -> Void

    /// Creates the server. `onListening` gets the bound port once the socket is listening.
    public init(
        configuration: EnvdConfiguration,
        logger: Logger = Logger(label: "wrenn.envd"),
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) {
        self.configuration = configuration
        self.logger = logger
        self.onListening = onListening
    }

    /// Every route but `GET /health` needs `Authorization: Bearer <token>` (compared in constant time; 401 before any
    /// handler runs, WebSocket upgrades included).
    static func authentication(_ identity: EnvdIdentity) -> BearerAuthMiddleware<EnvdRequestContext> {
        BearerAuthMiddleware(isPublic: { $0.method == .get && $0.uri.path == "/health" }, accepts: { identity.accepts(token: $0) })
    }

    /// Runs until cancelled or a graceful shutdown is triggered.
    public func run() async throws {
        MemoryTuning.apply()
        let services = EnvdServices(configuration: configuration, logger: logger)
        let identity = services.identity

        let router = Router(context: EnvdRequestContext.self)
        router.add(middleware: ErrorEnvelopeMiddleware())
        router.add(middleware: Self.authentication(identity))
        EnvdRoutes(services: services).register(on: router)

        let wsRouter = Router(context: EnvdRequestContext.self)
        wsRouter.add(middleware: ErrorEnvelopeMiddleware())
        wsRouter.add(middleware: Self.authentication(identity))
        WebSocketRoutes(services: services).register(on: wsRouter)

        let onListening = self.onListening
        let logger = self.logger
        let app = Application(
            router: router,
            server: .http1WebSocketUpgrade(
                webSocketRouter: wsRouter,
                configuration: .init(
                    http1: .init(idleTimeout: .seconds(300)),
                    ws: .init(
                        maxFrameSize: configuration.limits.maxClientMessage,
                        autoPing: .disabled,
                        closeTimeout: .seconds(5)
                    )
                )
            ),
            configuration: .init(
                address: .hostname(configuration.host, port: configuration.port),
                serverName: "wrenn-envd",
                reuseAddress: true
            ),
            services: [Janitor(services: services)],
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                logger.info("envd listening", metadata: ["port": "\(port)"])
                await onListening(port)
            },
            logger: logger
        )
        defer { services.processes.killAll() }
        try await app.run()
    }
}

/// Prunes exited processes and PTY sessions once a minute.
struct Janitor: Service {
    let services: EnvdServices

    func run() async throws {
        // Returns at once on graceful shutdown (a plain sleep would hold shutdown up for a minute).
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: .seconds(60))
                services.prune()
            }
        }
    }
}
