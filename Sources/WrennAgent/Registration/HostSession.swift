import AsyncHTTPClient
import Foundation
import Logging
import NIOConcurrencyHelpers
import WrennWire

/// The agent's standing with its control plane: the saved `HostCredentials`, kept current.
///
/// `establish` reuses saved credentials, or registers with a one-time token (`wrenn agent --register TOKEN
/// --address ip:port`). `refresh()` rotates the refresh token and saves the new pair before it is used, so a crash
/// never leaves the agent holding only a revoked token.
public final class HostSession: Sendable {
    /// What the agent advertises at registration; nil fields are measured on this machine.
    public struct Facts: Sendable {
        public var arch: String?
        public var cpuCores: Int?
        public var memoryMB: Int?
        public var diskGB: Int?
        public init(arch: String? = nil, cpuCores: Int? = nil, memoryMB: Int? = nil, diskGB: Int? = nil) {
            self.arch = arch; self.cpuCores = cpuCores; self.memoryMB = memoryMB; self.diskGB = diskGB
        }
    }

    public let path: String
    let client: ControlPlaneClient
    private let state: NIOLockedValueBox<HostCredentials>
    private let refreshing = NIOLockedValueBox<Task<Void, any Error>?>(nil)
    private let logger: Logger

    init(credentials: HostCredentials, path: String, client: ControlPlaneClient, logger: Logger) {
        self.path = path
        self.client = client
        self.state = NIOLockedValueBox(credentials)
        self.logger = logger
    }

    public var credentials: HostCredentials { state.withLockedValue { $0 } }
    public var hostID: String { credentials.hostID }
    /// The current host JWT for `X-Host-Token`.
    public var token: String { credentials.token }
    /// The bearer token the control plane presents to this agent.
    public var agentToken: String { credentials.agentToken }

    /// Saved credentials for `controlPlaneURL`, else a registration with `registrationToken` advertising `address`.
    public static func establish(controlPlaneURL: String, dataDirectory: String, registrationToken: String?, address: String,
                                 facts: Facts = Facts(), http: HTTPClient = .shared, logger: Logger) async throws -> HostSession {
        let path = HostCredentials.path(dataDirectory: dataDirectory)
        let client = ControlPlaneClient(baseURL: controlPlaneURL, http: http)
        if let token = registrationToken, !token.isEmpty {
            var request = RegisterHostRequest(token: token, arch: facts.arch ?? HostFactsProbe.arch(),
                                              cpuCores: facts.cpuCores ?? ProcessInfo.processInfo.activeProcessorCount,
                                              memoryMB: facts.memoryMB ?? Int(ProcessInfo.processInfo.physicalMemory / (1 << 20)),
                                              diskGB: facts.diskGB ?? HostFactsProbe.diskGB(dataDirectory), address: address)
            request.address = address
            let answer = try await client.register(request)
            guard let agentToken = answer.agentToken else { throw RegistrationError("control plane sent no agent token") }
            let credentials = HostCredentials(controlPlaneURL: client.baseURL, hostID: answer.host.id, token: answer.token,
                                              refreshToken: answer.refreshToken, agentToken: agentToken)
            try credentials.save(path: path)
            logger.info("registered with control plane", metadata: ["host": "\(answer.host.id)", "control_plane": "\(client.baseURL)"])
            return HostSession(credentials: credentials, path: path, client: client, logger: logger)
        }
        guard let saved = HostCredentials.load(path: path) else {
            throw RegistrationError("not registered: run once with --register TOKEN --address ip:port (no \(path))")
        }
        guard saved.controlPlaneURL == client.baseURL else {
            throw RegistrationError("\(path) belongs to control plane \(saved.controlPlaneURL), not \(client.baseURL): register again")
        }
        let session = HostSession(credentials: saved, path: path, client: client, logger: logger)
        try await session.refreshIfNeeded(within: 24 * 3600)
        return session
    }

    /// Refreshes when the JWT expires within `seconds` (or its expiry cannot be read).
    public func refreshIfNeeded(within seconds: TimeInterval) async throws {
        if let expiry = credentials.tokenExpiry, expiry.timeIntervalSinceNow > seconds { return }
        try await refresh()
    }

    /// Rotates the refresh token and gets a new JWT; concurrent callers share one rotation.
    public func refresh() async throws {
        let task: Task<Void, any Error> = refreshing.withLockedValue { current in
            if let current { return current }
            let task = Task { try await self.rotate() }
            current = task
            return task
        }
        defer { refreshing.withLockedValue { if $0 == task { $0 = nil } } }
        try await task.value
    }

    private func rotate() async throws {
        let current = credentials
        let answer = try await client.refresh(refreshToken: current.refreshToken)
        var next = current
        next.token = answer.token
        next.refreshToken = answer.refreshToken
        if let agentToken = answer.agentToken { next.agentToken = agentToken }
        try next.save(path: path)
        state.withLockedValue { $0 = next }
        logger.info("host token refreshed", metadata: ["host": "\(next.hostID)"])
    }

    /// Forgets the credentials (the control plane deleted this host).
    func forget() {
        try? FileManager.default.removeItem(atPath: path)
    }
}
