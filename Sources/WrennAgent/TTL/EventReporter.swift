import AsyncHTTPClient
import Foundation
import WrennImage
import Logging
import NIOCore
import ServiceLifecycle
import WrennWire

/// Delivers what the agent decided on its own (auto-pause, crash) to the control plane's
/// `POST /v1/hosts/sandbox-events`, as `AgentCapsuleEvent` JSON with the agent's bearer token.
///
/// Events are spooled to `<data>/agent/events/` before delivery and removed once the control plane answered 2xx,
/// so an agent restart or a control-plane outage loses none (the original kept them in memory only). Delivery
/// retries with exponential backoff; a 4xx other than 408/429 drops the event (it would never succeed).
/// Without a control-plane URL events are only logged.
public actor EventReporter: Service {
    private let url: String?
    private let token: String
    private let session: HostSession?
    private let spool: String
    private let client: HTTPClient
    private let logger: Logger
    private let firstDelay: Duration
    private let maxDelay: Duration
    private var wake: AsyncStream<Void>.Continuation?
    private var sequence = 0

    /// Creates the reporter; `client` is owned by the caller.
    /// With a `hostSession`, events carry its host JWT in `X-Host-Token` (refreshed on a 401) instead of the bearer token.
    public init(url: String?, token: String, hostSession: HostSession? = nil, spoolDirectory: String, client: HTTPClient, logger: Logger,
                retryDelay: Duration = .milliseconds(500), maxRetryDelay: Duration = .seconds(30)) {
        self.url = url
        self.token = token
        self.session = hostSession
        self.spool = spoolDirectory
        self.client = client
        self.logger = logger
        self.firstDelay = retryDelay
        self.maxDelay = maxRetryDelay
    }

    /// Queues an event (written to the spool first).
    public func report(_ event: AgentCapsuleEvent) {
        logger.info("capsule event", metadata: [
            "kind": "\(event.kind)", "capsule": "\(event.capsuleID)", "status": "\(event.status.rawValue)",
            "reason": "\(event.reason ?? "")"])
        guard url != nil else { return }
        do {
            try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
            sequence += 1
            let name = String(format: "%015.0f-%06d.json", event.at.timeIntervalSince1970 * 1000, sequence)
            try DurableFile.write(try WireCoding.makeEncoder().encode(event), to: spool + "/" + name)
        } catch {
            logger.error("cannot spool capsule event", metadata: ["error": "\(error)"])
        }
        wake?.yield()
    }

    /// Delivers spooled events until cancelled or shut down.
    public func run() async throws {
        guard url != nil else {
            try? await gracefulShutdown()
            return
        }
        let (signals, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        wake = continuation
        continuation.yield()
        await withGracefulShutdownHandler {
            var iterator = signals.makeAsyncIterator()
            while !Task.isCancelled {
                await self.drain()
                guard await iterator.next() != nil else { break }
            }
        } onGracefulShutdown: {
            continuation.finish()
        }
    }

    /// Sends every spooled event oldest first; returns when the spool is empty or the task is cancelled.
    private func drain() async {
        var delay = firstDelay
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let files = ((try? FileManager.default.contentsOfDirectory(atPath: spool)) ?? [])
                .filter { $0.hasSuffix(".json") }.sorted()
            guard let name = files.first else { return }
            let path = spool + "/" + name
            guard let data = FileManager.default.contents(atPath: path) else {
                try? FileManager.default.removeItem(atPath: path)
                continue
            }
            switch await send(data) {
            case .delivered, .rejected:
                try? FileManager.default.removeItem(atPath: path)
                delay = firstDelay
            case .retry:
                let wait = delay
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: wait) }
                delay = min(delay * 2, maxDelay)
            }
        }
    }

    enum Outcome { case delivered, rejected, retry }

    private func send(_ body: Data) async -> Outcome {
        guard let url else { return .rejected }
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        if let session {
            request.headers.add(name: "X-Host-Token", value: session.token)
        } else {
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
        }
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await client.execute(request, timeout: .seconds(10))
            _ = try? await response.body.collect(upTo: 64 << 10)
            let code = Int(response.status.code)
            if (200..<300).contains(code) { return .delivered }
            if code == 401, let session {
                // The host JWT expired or was rotated away: refresh and send again.
                do { try await session.refresh() } catch { logger.warning("host token refresh failed", metadata: ["error": "\(error)"]) }
                return .retry
            }
            if (400..<500).contains(code) && code != 408 && code != 429 {
                logger.error("control plane rejected capsule event", metadata: ["status": "\(code)"])
                return .rejected
            }
            logger.warning("capsule event delivery failed, will retry", metadata: ["status": "\(code)"])
            return .retry
        } catch {
            logger.warning("capsule event delivery failed, will retry", metadata: ["error": "\(error)"])
            return .retry
        }
    }
}
