import AsyncHTTPClient
import Foundation
import Logging
import NIOConcurrencyHelpers
import WrennPKI
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
    /// The agent's mutual-TLS identity (key made here, certificate from the control plane's CA), served by
    /// ``AgentServer`` and renewed by ``refresh()`` when it nears expiry.
    public let tls: RenewableServerIdentity
    /// Where the identity is kept (`<data>/agent/tls/`, key mode 0600).
    let tlsDirectory: String

    init(credentials: HostCredentials, path: String, client: ControlPlaneClient, tls: TLSIdentity, tlsDirectory: String, logger: Logger) {
        self.path = path
        self.client = client
        self.state = NIOLockedValueBox(credentials)
        self.tls = RenewableServerIdentity(tls)
        self.tlsDirectory = tlsDirectory
        self.logger = logger
    }

    /// Renew the certificate at a refresh when it expires within this long.
    static let certificateRenewalWindow: TimeInterval = 30 * 86_400

    /// The TLS identity directory of a data directory.
    public static func tlsDirectory(dataDirectory: String) -> String { dataDirectory + "/agent/tls" }

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
        let tlsDirectory = Self.tlsDirectory(dataDirectory: dataDirectory)
        let client = ControlPlaneClient(baseURL: controlPlaneURL, http: http)
        if let token = registrationToken, !token.isEmpty {
            let (key, csr) = try TLSIdentity.makeKeyAndCSR(commonName: "wrenn-agent")
            var request = RegisterHostRequest(token: token, arch: facts.arch ?? HostFactsProbe.arch(),
                                              cpuCores: facts.cpuCores ?? ProcessInfo.processInfo.activeProcessorCount,
                                              memoryMB: facts.memoryMB ?? Int(ProcessInfo.processInfo.physicalMemory / (1 << 20)),
                                              diskGB: facts.diskGB ?? HostFactsProbe.diskGB(dataDirectory), address: address)
            request.address = address
            request.csr = csr
            let answer = try await client.register(request)
            guard let agentToken = answer.agentToken else { throw RegistrationError("control plane sent no agent token") }
            guard let certificate = answer.certificate, let ca = answer.caCertificate else {
                throw RegistrationError("control plane sent no agent certificate (mutual TLS)")
            }
            let identity = TLSIdentity(certificatePEM: certificate, privateKeyPEM: key, caPEM: ca)
            try identity.save(to: tlsDirectory)
            let credentials = HostCredentials(controlPlaneURL: client.baseURL, hostID: answer.host.id, token: answer.token,
                                              refreshToken: answer.refreshToken, agentToken: agentToken)
            try credentials.save(path: path)
            logger.info("registered with control plane", metadata: ["host": "\(answer.host.id)", "control_plane": "\(client.baseURL)"])
            return HostSession(credentials: credentials, path: path, client: client, tls: identity, tlsDirectory: tlsDirectory, logger: logger)
        }
        guard let saved = HostCredentials.load(path: path) else {
            throw RegistrationError("not registered: run once with --register TOKEN --address ip:port (no \(path))")
        }
        guard saved.controlPlaneURL == client.baseURL else {
            throw RegistrationError("\(path) belongs to control plane \(saved.controlPlaneURL), not \(client.baseURL): register again")
        }
        guard let identity = try TLSIdentity.load(from: tlsDirectory) else {
            throw RegistrationError("no TLS identity in \(tlsDirectory): register again with --register TOKEN")
        }
        let session = HostSession(credentials: saved, path: path, client: client, tls: identity, tlsDirectory: tlsDirectory, logger: logger)
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
        // Ask for a new certificate (new key) when the current one is close to expiry.
        let expiry = try? tls.identity.notValidAfter()
        let renewal = (expiry.map { $0.timeIntervalSinceNow < Self.certificateRenewalWindow } ?? true)
            ? try TLSIdentity.makeKeyAndCSR(commonName: "wrenn-agent") : nil
        let answer = try await client.refresh(refreshToken: current.refreshToken, csr: renewal?.csrPEM)
        var next = current
        next.token = answer.token
        next.refreshToken = answer.refreshToken
        if let agentToken = answer.agentToken { next.agentToken = agentToken }
        try next.save(path: path)
        state.withLockedValue { $0 = next }
        logger.info("host token refreshed", metadata: ["host": "\(next.hostID)"])
        if let renewal, let certificate = answer.certificate, let ca = answer.caCertificate {
            let identity = TLSIdentity(certificatePEM: certificate, privateKeyPEM: renewal.privateKeyPEM, caPEM: ca)
            do {
                try tls.replace(with: identity)
                try identity.save(to: tlsDirectory)
                logger.info("agent certificate renewed", metadata: ["host": "\(next.hostID)"])
            } catch {
                logger.error("agent certificate renewal failed; keeping the current one", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Forgets the credentials (the control plane deleted this host).
    func forget() {
        try? FileManager.default.removeItem(atPath: path)
    }
}
