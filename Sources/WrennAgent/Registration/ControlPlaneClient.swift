import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import WrennWire

/// The agent's calls to the control plane's host endpoints: register, refresh, heartbeat.
struct ControlPlaneClient: Sendable {
    let baseURL: String
    let http: HTTPClient

    init(baseURL: String, http: HTTPClient = .shared) {
        var base = baseURL.trimmingCharacters(in: .whitespaces)
        while base.hasSuffix("/") { base.removeLast() }
        self.baseURL = base
        self.http = http
    }

    /// The answer to a heartbeat.
    enum HeartbeatOutcome: Sendable, Equatable {
        case accepted
        /// 401: the JWT expired or was revoked (refresh, then retry).
        case unauthorized
        /// 403: the JWT is another host's.
        case forbidden
        /// 404: the host was deleted from the control plane.
        case gone
        case failed(String)
    }

    func register(_ request: RegisterHostRequest) async throws -> HostTokenResponse {
        try await post("/v1/hosts/register", body: request, as: HostTokenResponse.self)
    }

    func refresh(refreshToken: String, csr: String? = nil) async throws -> HostTokenResponse {
        try await post("/v1/hosts/auth/refresh", body: RefreshHostTokenRequest(refreshToken: refreshToken, csr: csr), as: HostTokenResponse.self)
    }

    func heartbeat(hostID: String, token: String, report: HostHeartbeat) async -> HeartbeatOutcome {
        do {
            let (status, _) = try await send("/v1/hosts/\(hostID)/heartbeat", body: report, headers: ["X-Host-Token": token])
            switch status {
            case 200..<300: return .accepted
            case 401: return .unauthorized
            case 403: return .forbidden
            case 404: return .gone
            default: return .failed("HTTP \(status)")
            }
        } catch {
            return .failed("\(error)")
        }
    }

    private func post<T: Decodable>(_ path: String, body: some Encodable, as type: T.Type) async throws -> T {
        let (status, data) = try await send(path, body: body, headers: [:])
        guard (200..<300).contains(status) else {
            let message = (try? JSONDecoder().decode(ErrorEnvelope.self, from: data))?.error.message ?? "HTTP \(status)"
            throw RegistrationError("control plane refused \(path): \(message)")
        }
        do {
            return try WireCoding.makeDecoder().decode(T.self, from: data)
        } catch {
            throw RegistrationError("control plane sent an unreadable answer to \(path): \(error)")
        }
    }

    private func send(_ path: String, body: some Encodable, headers: [String: String]) async throws -> (Int, Data) {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(data: try WireCoding.makeEncoder().encode(body)))
        let response = try await http.execute(request, timeout: .seconds(30))
        let buffer = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), Data(buffer: buffer))
    }
}
