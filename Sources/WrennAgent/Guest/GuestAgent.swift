import Foundation
import WrennWire

/// What the runtime asks of the agent inside a capsule (envd): readiness, quiesce before a save, re-identify after
/// a restore. Every call but the health check carries the capsule's bearer token.
public protocol GuestAgent: Sendable {
    /// Whether envd answers `GET /health` with 200.
    func isHealthy(host: String, port: Int) async -> Bool
    /// Asks envd to sync filesystems and quiesce before a pause or snapshot.
    func prepareForSave(host: String, port: Int, token: String) async throws
    /// Tells envd it was restored: new identity and token, fresh entropy, the host's clock. `token` is the one
    /// in effect in the saved guest (the template's); `request.accessToken` replaces it.
    func restored(host: String, port: Int, token: String, request: EnvdRestoreRequest) async throws
}

/// Fresh secrets for guests.
public enum GuestSecrets {
    /// `count` random bytes as lowercase hex.
    public static func hex(bytes count: Int = 32) -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    /// `count` random bytes, base64.
    public static func base64(bytes count: Int = 32) -> String {
        var generator = SystemRandomNumberGenerator()
        return Data((0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }).base64EncodedString()
    }

    /// The re-identify request for a capsule restored now.
    public static func restoreRequest(capsuleID: String, hostname: String, accessToken: String) -> EnvdRestoreRequest {
        EnvdRestoreRequest(
            capsuleId: capsuleID, hostname: hostname, accessToken: accessToken,
            timestampMs: Int64((Date().timeIntervalSince1970 * 1000).rounded()), entropy: base64())
    }
}

/// envd over HTTP: `GET /health`, `POST /snapshot/prepare`, `POST /snapshot/restored` (see `WrennEnvd`).
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
    public func prepareForSave(host: String, port: Int, token: String) async throws {
        let response = try await GuestHTTP.request(host: host, port: port, method: "POST", path: "/snapshot/prepare",
                                                   headers: ["Authorization": "Bearer \(token)"], timeout: .seconds(3))
        guard (200..<300).contains(response.status) else { throw RuntimeError.guestProtocol("prepare answered \(response.status)") }
    }

    /// `POST /snapshot/restored` with an `EnvdRestoreRequest` body.
    public func restored(host: String, port: Int, token: String, request: EnvdRestoreRequest) async throws {
        let body = try JSONEncoder().encode(request)
        let response = try await GuestHTTP.request(host: host, port: port, method: "POST", path: "/snapshot/restored", body: body,
                                                   headers: ["Authorization": "Bearer \(token)"], timeout: .seconds(5))
        guard (200..<300).contains(response.status) else {
            throw RuntimeError.guestProtocol("restored answered \(response.status): \(String(decoding: response.body, as: UTF8.self))")
        }
    }
}
