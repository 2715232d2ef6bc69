import Foundation

/// What the runtime asks of the agent inside a capsule (envd): readiness, quiesce before a save, re-identify after
/// a restore. The HTTP paths are the contract with envd (see docs/runtime.md).
public protocol GuestAgent: Sendable {
    /// Whether envd answers `GET /health` with 200.
    func isHealthy(host: String, port: Int) async -> Bool
    /// Asks envd to sync filesystems and quiesce before a pause or snapshot (best effort).
    func prepareForSave(host: String, port: Int, token: String?) async throws
    /// Tells envd it was restored: new identity, fresh entropy, the host's clock (best effort).
    func restored(host: String, port: Int, identity: GuestIdentity) async throws
}

/// Identity handed to a restored guest.
public struct GuestIdentity: Codable, Sendable, Equatable {
    /// Capsule id (`cl-…`).
    public var capsuleID: String
    /// Hostname to set.
    public var hostname: String
    /// Bearer token envd must require from now on, if any.
    public var accessToken: String?
    /// Host wall-clock time (seconds since the epoch).
    public var unixTime: Double
    /// 64 hex characters of fresh randomness to mix into the guest RNG.
    public var entropy: String

    enum CodingKeys: String, CodingKey {
        case capsuleID = "capsule_id", hostname, accessToken = "access_token", unixTime = "unix_time", entropy
    }

    /// Creates an identity with the current time and fresh entropy.
    public init(capsuleID: String, hostname: String, accessToken: String?) {
        self.capsuleID = capsuleID
        self.hostname = hostname
        self.accessToken = accessToken
        self.unixTime = Date().timeIntervalSince1970
        var generator = SystemRandomNumberGenerator()
        self.entropy = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }
}

/// envd over HTTP: `GET /health`, `POST /snapshot/prepare`, `POST /snapshot/restored`.
public struct EnvdGuestAgent: GuestAgent {
    /// Creates the client.
    public init() {}

    /// `GET /health` → 200.
    public func isHealthy(host: String, port: Int) async -> Bool {
        guard let response = try? await GuestHTTP.request(host: host, port: port, method: "GET", path: "/health", timeout: .seconds(2)) else {
            return false
        }
        return response.status == 200
    }

    /// `POST /snapshot/prepare`.
    public func prepareForSave(host: String, port: Int, token: String?) async throws {
        var headers: [String: String] = [:]
        if let token { headers["Authorization"] = "Bearer \(token)" }
        let response = try await GuestHTTP.request(host: host, port: port, method: "POST", path: "/snapshot/prepare", headers: headers, timeout: .seconds(3))
        guard (200..<300).contains(response.status) else { throw RuntimeError.guestProtocol("prepare answered \(response.status)") }
    }

    /// `POST /snapshot/restored` with a ``GuestIdentity`` JSON body.
    public func restored(host: String, port: Int, identity: GuestIdentity) async throws {
        let body = try JSONEncoder().encode(identity)
        let response = try await GuestHTTP.request(host: host, port: port, method: "POST", path: "/snapshot/restored", body: body, timeout: .seconds(5))
        guard (200..<300).contains(response.status) else { throw RuntimeError.guestProtocol("restored answered \(response.status)") }
    }
}
