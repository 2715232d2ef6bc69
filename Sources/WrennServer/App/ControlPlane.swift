import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle
import WrennHTTP

/// Builds and runs the control plane: database, migrations, services, router, HTTP server, background jobs.
public enum ControlPlane {
    /// Everything `wrenn serve` needs, assembled but not yet running.
    public struct Assembly: Sendable {
        public let services: ControlPlaneServices
        public let database: Database
        public let registry: PrometheusCollectorRegistry
    }

    /// Opens the database, applies migrations and wires the services.
    public static func assemble(config: ServerConfig, clock: any WallClock = SystemWallClock(), logger: Logger,
                                mailTransport: Mailer.Transport? = nil) async throws -> Assembly {
        let database = try await Database.open(url: config.databaseURL, logger: logger)
        let transport = mailTransport ?? config.smtp.map { SMTPMailTransport.make($0, logger: logger) }
        let mailer = Mailer(database: database, clock: clock, logger: logger, transport: transport)
        let local = config.agent.map { AgentClient(hostID: HostDirectory.localHostID, baseURL: $0.url, token: $0.token) }
        let services = ControlPlaneServices(config: config, database: database, clock: clock, mailer: mailer,
                                            hosts: HostDirectory(local: local, database: database, secret: config.secret,
                                                                 tls: try AgentTLS.load(dataDirectory: config.dataDirectory)),
                                            logger: logger)
        return Assembly(services: services, database: database, registry: PrometheusCollectorRegistry())
    }

    /// The router with every route and middleware of the control plane.
    public static func makeRouter(_ assembly: Assembly) -> Router<WrennRequestContext> {
        let router = Router(context: WrennRequestContext.self)
        let proxy = PortProxy(services: assembly.services)
        router.add(middleware: RequestMetricsMiddleware(registry: assembly.registry))
        // Every answer of the API origin (errors included) gets nosniff and a CSP that allows nothing; the port proxy's
        // answers are the capsule app's own origin and are left alone.
        router.add(middleware: SecurityHeadersMiddleware { (try? proxy.address(of: $0)) != nil })
        router.add(middleware: ErrorEnvelopeMiddleware())
        router.add(middleware: PortProxyMiddleware(proxy: proxy))
        router.add(middleware: AuthenticationMiddleware(sessions: assembly.services.sessions, apiKeys: assembly.services.apiKeys))
        let services = assembly.services
        SystemRoutes(services: services, registry: assembly.registry).register(on: router)
        AuthRoutes(services: services).register(on: router)
        OAuthRoutes(services: services).register(on: router)
        AccountRoutes(services: services).register(on: router)
        TeamRoutes(services: services).register(on: router)
        CapsuleStatsRoutes(services: services).register(on: router)
        CapsuleRoutes(services: services).register(on: router)
        CapsuleDataRoutes(services: services).register(on: router)
        FileUploadRoutes(services: services).register(on: router)
        EventRoutes(services: services).register(on: router)
        AdminRoutes(services: services).register(on: router)
        AdminCapsuleRoutes(services: services).register(on: router)
        HostCallbackRoutes(services: services).register(on: router)
        HostRoutes(services: services).register(on: router)
        ChannelRoutes(services: services).register(on: router)
        AdminBuildRoutes(services: services).register(on: router)
        return router
    }

    /// The router consulted for WebSocket upgrades (the capsule streams); it shares the authentication middleware.
    static func makeWebSocketRouter(_ assembly: Assembly, httpRouter: Router<WrennRequestContext>) -> Router<WrennRequestContext> {
        let wsRouter = Router(context: WrennRequestContext.self)
        // A refused upgrade is answered with this router's answer (status + envelope) before any upgrade.
        wsRouter.add(middleware: ErrorEnvelopeMiddleware())
        wsRouter.add(middleware: PortProxyWebSocketMiddleware(proxy: PortProxy(services: assembly.services)))
        wsRouter.add(middleware: AuthenticationMiddleware(sessions: assembly.services.sessions, apiKeys: assembly.services.apiKeys))
        wsRouter.add(middleware: OriginCheckMiddleware(config: assembly.services.config))
        CapsuleStreamRoutes(services: assembly.services).register(on: httpRouter, webSocketRouter: wsRouter)
        AdminCapsuleRoutes(services: assembly.services).registerStreams(on: httpRouter, webSocketRouter: wsRouter)
        AdminBuildRoutes(services: assembly.services).registerStream(on: httpRouter, webSocketRouter: wsRouter)
        return wsRouter
    }

    /// The HTTP application with the database and background jobs attached: running it applies migrations, then serves.
    public static func makeApplication(_ assembly: Assembly, host: String, port: Int, logger: Logger,
                                       onServerRunning: (@Sendable (Int) async -> Void)? = nil) -> some ApplicationProtocol {
        let router = makeRouter(assembly)
        let wsRouter = makeWebSocketRouter(assembly, httpRouter: router)
        let edge = assembly.services.config.edge
        let server = HTTPServerBuilder.http1KeepAliveWebSocket(
            webSocketRouter: wsRouter,
            configuration: .init(http1: .init(idleTimeout: TimeAmount(edge.idleTimeout)),
                                 ws: .init(maxFrameSize: 1 << 20,
                                           autoPing: .enabled(timePeriod: assembly.services.config.webSocketPingInterval))),
            firstRequestTimeout: edge.idleTimeout)
        var app = Application(router: router, server: server,
                              configuration: .init(address: .hostname(host, port: port), serverName: "wrenn"),
                              services: [assembly.database, assembly.services.lifecycle, assembly.services.hostMonitor, assembly.services.channelDelivery, assembly.services.buildWorker,
                                         AccountPurgeJob(accounts: assembly.services.accounts, logger: logger),
                                         StatsSampler(stats: assembly.services.stats, interval: assembly.services.config.statsSampleInterval, logger: logger),
                                         UsageRollupJob(stats: assembly.services.stats, interval: assembly.services.config.usageRollupInterval, logger: logger)],
                              onServerRunning: { channel in await onServerRunning?(channel.localAddress?.port ?? port) },
                              logger: logger)
        app.beforeServerStarts {
            try await Migrations.apply(to: assembly.database, logger: logger)
            try await ChannelService.checkEncryptionKey(database: assembly.database, settings: assembly.services.config.channels)
            assembly.services.channelDelivery.markReady()
            await assembly.services.capsules.reconcileTransitional()
            try await assembly.services.builds.failInterrupted()
        }
        return app
    }

    /// Runs the control plane until SIGINT/SIGTERM. With `devBootstrap`, an empty installation gets an admin account
    /// and API key written to `<data>/dev.env` once it is listening.
    public static func run(config: ServerConfig, logger: Logger, devBootstrap: Bool = false) async throws {
        try await makeService(config: config, logger: logger, devBootstrap: devBootstrap).runService()
    }

    /// The control plane as a service to run beside others (`wrenn dev` runs it with a host agent).
    public static func makeService(config: ServerConfig, logger: Logger, devBootstrap: Bool = false) async throws -> some ApplicationProtocol {
        let assembly = try await assemble(config: config, logger: logger)
        return makeApplication(assembly, host: config.listenHost, port: config.listenPort, logger: logger) { port in
            logger.info("control plane listening", metadata: ["address": "\(config.listenHost):\(port)", "database": "\(assembly.database.kind.rawValue)"])
            guard devBootstrap else { return }
            let host = ["0.0.0.0", "::", ""].contains(config.listenHost) ? "127.0.0.1" : config.listenHost
            do {
                // `localhost` rather than 127.0.0.1: the SDK derives port-proxy hosts from the base URL, and
                // `8888-<id>.localhost` resolves to loopback (nss-myhostname) where `8888-<id>.127.0.0.1` resolves nowhere.
                try await DevBootstrap(services: assembly.services, logger: logger)
                    .run(baseURL: "http://\(host == "127.0.0.1" ? "localhost" : host):\(port)")
            } catch {
                logger.error("dev bootstrap failed", metadata: ["error": "\(error)"])
            }
        }
    }
}

/// Purges accounts soft-deleted more than 15 days ago, hourly.
struct AccountPurgeJob: Service {
    let accounts: AccountService
    let logger: Logger

    func run() async throws {
        // First pass a minute after start, once migrations have surely been applied.
        try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(60)) }
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            do {
                let purged = try await accounts.purgeDeletedAccounts()
                if purged > 0 { logger.info("purged deleted accounts", metadata: ["count": "\(purged)"]) }
            } catch {
                logger.error("account purge failed", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(3600)) }
        }
    }
}
