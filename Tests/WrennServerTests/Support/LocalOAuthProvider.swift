import Foundation
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle

/// A GitHub-shaped OAuth2 provider on loopback, speaking the real protocol over HTTP: `/login/oauth/authorize`
/// redirects back with a code, `/login/oauth/access_token` exchanges it (form-encoded, client secret checked),
/// `/user` and `/user/emails` answer with the bearer token's profile.
final class LocalOAuthProvider: Sendable {
    struct Profile: Sendable { var id: Int64; var login: String; var name: String?; var email: String?; var privateEmail: String? }

    static let clientID = "test-client"
    static let clientSecret = "test-secret"

    private struct State {
        var nextProfile: Profile?
        var codes: [String: Profile] = [:]
        var tokens: [String: Profile] = [:]
    }
    private let state = NIOLockedValueBox(State())

    /// The profile the next authorization will sign in as.
    func willAuthorize(_ profile: Profile) { state.withLockedValue { $0.nextProfile = profile } }

    /// Runs the provider for the duration of `body`, passing its base URL.
    func run<T: Sendable>(_ body: @Sendable (String) async throws -> T) async throws -> T {
        let router = Router()
        router.get("login/oauth/authorize") { request, _ -> Response in
            let q = request.uri.queryParameters
            guard q.get("client_id") == Self.clientID, let redirect = q.get("redirect_uri"), let stateParam = q.get("state") else {
                return Response(status: .badRequest)
            }
            let code = UUID().uuidString
            let granted = self.state.withLockedValue { s -> Bool in
                guard let p = s.nextProfile else { return false }
                s.codes[code] = p
                return true
            }
            let target = granted ? "\(redirect)?code=\(code)&state=\(stateParam)" : "\(redirect)?error=access_denied&state=\(stateParam)"
            return Response.redirect(to: target, type: .found)
        }
        router.post("login/oauth/access_token") { request, context -> Response in
            let form = try await request.body.collect(upTo: 1 << 16)
            var components = URLComponents()
            components.percentEncodedQuery = String(buffer: form)
            let items = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { a, _ in a })
            guard items["client_id"] == Self.clientID, items["client_secret"] == Self.clientSecret, let code = items["code"] else {
                return Self.json(#"{"error":"incorrect_client_credentials"}"#, status: .unauthorized)
            }
            let token = self.state.withLockedValue { s -> String? in
                guard let p = s.codes.removeValue(forKey: code) else { return nil }
                let t = "gho_" + UUID().uuidString
                s.tokens[t] = p
                return t
            }
            guard let token else { return Self.json(#"{"error":"bad_verification_code"}"#, status: .ok) }
            return Self.json(#"{"access_token":"\#(token)","token_type":"bearer","scope":"read:user,user:email"}"#, status: .ok)
        }
        router.get("user") { request, _ -> Response in
            guard let p = self.profile(request) else { return Response(status: .unauthorized) }
            let email = p.email.map { "\"\($0)\"" } ?? "null"
            let name = p.name.map { "\"\($0)\"" } ?? "null"
            return Self.json(#"{"id":\#(p.id),"login":"\#(p.login)","name":\#(name),"email":\#(email)}"#, status: .ok)
        }
        router.get("user/emails") { request, _ -> Response in
            guard let p = self.profile(request) else { return Response(status: .unauthorized) }
            let mail = p.privateEmail ?? p.email ?? ""
            return Self.json(#"[{"email":"other@elsewhere.test","primary":false,"verified":true},{"email":"\#(mail)","primary":true,"verified":true}]"#, status: .ok)
        }
        return try await withLoopbackServer(router, label: "OAuth provider", logLevel: .warning, body)
    }

    private func profile(_ request: Request) -> Profile? {
        guard let auth = request.headers[.authorization], auth.hasPrefix("Bearer ") else { return nil }
        let token = String(auth.dropFirst("Bearer ".count))
        return state.withLockedValue { $0.tokens[token] }
    }

    private static func json(_ text: String, status: HTTPResponse.Status) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
