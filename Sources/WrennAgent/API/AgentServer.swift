import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import HummingbirdWebSocket
import Logging
import NIOCore
import ServiceLifecycle
import WrennHTTP
import WrennPKI

/// The host agent's HTTP + WebSocket API (the contract in `WrennWire/Agent/AgentAPI.swift`) as a
/// swift-service-lifecycle `Service`: capsule lifecycle on the ``Runtime``, the envd proxy, the idle reaper
/// with its `auto_paused` events, the crash watcher and the metrics sampler.
///
/// ```swift
/// let runtime = QemuMicrovmRuntime(config: RuntimeConfig(dataDirectory: dir, network: NetworkConfig()!))
/// let agent = AgentServer(configuration: .init(token: token, dataDirectory: dir), runtime: runtime)
/// try await ServiceGroup(services: [agent], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
/// ```
/// `run()` first calls `runtime.start()` (which re-adopts capsules that outlived a previous agent), reloads the
/// agent's own records of them, then serves. On graceful shutdown it stops accepting requests and leaves every
/// capsule as it is: running VMs keep running and are re-adopted by the next start.
public struct AgentServer: Service {
    /// The configuration it was built with.
    public let configuration: AgentServerConfiguration
    private let runtime: any Runtime
    private let logger: Logger
    private let onListening: @Sendable (Int) async -> Void

    /// Creates the server. `onListening` gets the bound port once the socket is listening.
    public init(
        configuration: AgentServerConfiguration,
        runtime: any Runtime,
        logger: Logger = Logger(label: "wrenn.agent"),
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) {
        self.configuration = configuration
        self.runtime = runtime
        self.logger = logger
        self.onListening = onListening
    }

    /// Runs until cancelled or a graceful shutdown is triggered.
    public func run() async throws {
        guard !configuration.token.isEmpty else { throw AgentError.invalid("the agent token must not be empty") }
        try FileManager.default.createDirectory(atPath: configuration.agentDirectory, withIntermediateDirectories: true)
        try await runtime.start()

        var clientConfiguration = HTTPClient.Configuration(
            redirectConfiguration: .disallow, timeout: .init(connect: TimeAmount(configuration.envdConnectTimeout)),
            decompression: .disabled)
        // One capsule's long calls (foreground execs, downloads) must not queue its other calls: the control plane
        // bounds each team's concurrent data-plane calls instead.
        clientConfiguration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 256)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration)
        do {
            try await serve(client: client)
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }

    private func serve(client: HTTPClient) async throws {
        let services = AgentServices(
            configuration: configuration, runtime: runtime,
            book: CapsuleBook(directory: configuration.agentDirectory + "/capsules", logger: logger),
            activity: ActivityTracker(),
            events: EventReporter(
                url: configuration.eventsURL, token: configuration.controlPlaneToken ?? configuration.token,
                hostSession: configuration.hostSession,
                spoolDirectory: configuration.agentDirectory + "/events", client: client, logger: logger,
                retryDelay: configuration.eventRetryDelay, maxRetryDelay: configuration.eventRetryMaxDelay),
            facts: HostFactsProbe(dataDirectory: configuration.dataDirectory, runtime: runtime),
            metrics: CapsuleMetrics(runtime: runtime),
            client: client, logger: logger)

        // Re-adoption: the runtime reloaded its records; keep ours for the capsules it still has. Idle time of
        // re-adopted running capsules counts from now (the agent cannot know what happened while it was down).
        let capsules = await runtime.list()
        await services.book.load(keeping: Set(capsules.map(\.id)))
        for info in capsules where await services.book.record(info.id) == nil {
            // A capsule the agent has no record of (created by an older agent or lost record): no idle timeout, the
            // creation time the runtime recorded.
            let created = (runtime as? QemuMicrovmRuntime).flatMap { try? $0.layout(of: info.id).load().createdAt }
            await services.book.save(AgentCapsuleRecord(
                id: info.id, template: info.template, vcpus: info.vcpus, memoryMB: info.memoryMiB, diskSizeMB: info.diskMiB,
                timeoutSec: 0, createdAt: created.map { Date(timeIntervalSince1970: $0) } ?? Date(), envdVersion: nil))
        }
        for info in capsules { services.activity.touch(info.id) }
        if !capsules.isEmpty {
            logger.info("re-adopted capsules", metadata: [
                "count": "\(capsules.count)", "running": "\(capsules.filter { $0.state == .running }.count)"])
        }
        Task { _ = await services.facts.facts() }

        let router = Router(context: AgentRequestContext.self)
        router.add(middleware: ErrorEnvelopeMiddleware(translate: AgentError.translate))
        router.add(middleware: BearerAuthMiddleware(token: configuration.token))
        CapsuleRoutes(services: services).register(on: router)
        TemplateRoutes(services: services).register(on: router)
        EnvdProxy(services: services).register(on: router)
        GuestPortProxy(services: services).register(on: router)

        let wsRouter = Router(context: AgentRequestContext.self)
        wsRouter.add(middleware: ErrorEnvelopeMiddleware(translate: AgentError.translate))
        wsRouter.add(middleware: BearerAuthMiddleware(token: configuration.token))
        EnvdWebSocketProxy(services: services).register(on: wsRouter)
        GuestPortProxy(services: services).registerWebSocket(on: wsRouter)

        let onListening = self.onListening
        let logger = self.logger
        let plain = HTTPServerBuilder.http1KeepAliveWebSocket(
            webSocketRouter: wsRouter,
            configuration: .init(
                http1: .init(idleTimeout: .seconds(300)),
                ws: .init(maxFrameSize: configuration.maxWebSocketFrame, autoPing: .disabled, closeTimeout: .seconds(5))
            ),
            firstRequestTimeout: .seconds(30)
        )
        // Registered agents serve mutual TLS: only a client holding a certificate of the control plane's CA
        // gets as far as HTTP (the bearer token is still checked inside).
        let tls = configuration.tls ?? configuration.hostSession?.tls
        let server = try tls.map { try HTTPServerBuilder.tls(plain, tlsConfiguration: $0.serverConfiguration()) } ?? plain
        let app = Application(
            router: router,
            server: server,
            configuration: .init(
                address: .hostname(configuration.host, port: configuration.port),
                serverName: "wrenn-agent",
                reuseAddress: true
            ),
            services: [IdleReaper(services: services), services.events, services.metrics]
                + (configuration.hostSession.map { session -> [any Service] in
                    [HeartbeatService(session: session, runtime: runtime, interval: configuration.heartbeatInterval, logger: logger)]
                } ?? []),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                logger.info("agent listening", metadata: ["address": "\(channel.localAddress?.description ?? "?")"])
                await onListening(port)
            },
            logger: logger
        )
        try await app.run()
    }
}
