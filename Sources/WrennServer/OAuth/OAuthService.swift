import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import SQLKit
import WrennWire

/// Sign-in and account linking with an OAuth2 provider (GitHub, whose endpoints are configurable so tests can run
/// a real local provider).
///
/// The state travels in an HMAC-signed, 10-minute `oauth_state` cookie bound to the `state` query parameter; a link
/// request also carries the linking user's id inside that signed cookie.
public struct OAuthService: Sendable {
    static let stateLifetime: TimeInterval = 600
    static let supported = ["github"]

    let config: ServerConfig
    let database: Database
    let clock: any WallClock
    let sessions: SessionService
    let teams: TeamService
    let audit: AuditService
    let accounts: AccountService
    let logger: Logger

    /// What the flow is for.
    public enum Intent: Sendable {
        case login
        case link(Principal)
    }

    /// The start of a flow: where to send the browser and the state cookie to set.
    public struct Start: Sendable {
        public var url: String
        public var stateCookie: String
    }

    /// The end of a flow: where to send the browser, and the session to set when one was created.
    public struct Finish: Sendable {
        public var redirect: String
        public var session: SessionService.Issued?
    }

    func settings(_ provider: String) throws -> ServerConfig.OAuthProviderSettings {
        guard Self.supported.contains(provider), let settings = config.github else {
            throw ServiceError(.notFound, "provider_not_found", "OAuth provider \"\(provider)\" is not configured")
        }
        return settings
    }

    var callbackBase: String {
        var base = config.publicURL
        while base.hasSuffix("/") { base.removeLast() }
        return base
    }

    var frontendBase: String {
        var base = config.frontendURL
        while base.hasSuffix("/") { base.removeLast() }
        return base
    }

    func redirectURI(_ provider: String) -> String { "\(callbackBase)/auth/oauth/\(provider)/callback" }

    public func begin(provider: String, intent: Intent) throws -> Start {
        let settings = try settings(provider)
        let nonce = Secrets.randomHex(bytes: 16)
        let expires = Int64(clock.now().addingTimeInterval(Self.stateLifetime).timeIntervalSince1970)
        var linkUser = "-"
        var kind = "login"
        if case .link(let principal) = intent {
            linkUser = try principal.requireUser()
            kind = "link"
        }
        let payload = "\(nonce).\(kind).\(linkUser).\(expires)"
        let cookie = payload + "." + Secrets.hmacHex(payload, key: stateKey)
        var components = URLComponents(string: settings.authorizeURL)
        let existingItems = components?.queryItems ?? []
        components?.queryItems = existingItems + [
            URLQueryItem(name: "client_id", value: settings.clientID),
            URLQueryItem(name: "redirect_uri", value: redirectURI(provider)),
            URLQueryItem(name: "scope", value: "read:user user:email"),
            URLQueryItem(name: "state", value: nonce),
            URLQueryItem(name: "allow_signup", value: "true"),
        ]
        guard let url = components?.url?.absoluteString else { throw ServiceError(.internalError, "internal_error", "bad authorize URL") }
        return Start(url: url, stateCookie: cookie)
    }

    var stateKey: SymmetricKey { SymmetricKey(data: SHA256.hash(data: Data(("oauth-state:" + config.secret).utf8))) }

    /// Handles the provider's redirect back. Never throws for user-caused failures: they become `?error=` redirects.
    public func finish(provider: String, code: String?, state: String?, providerError: String?, stateCookie: String?,
                       origin: SessionService.Origin) async -> Finish {
        let loginTarget = "\(frontendBase)/auth/\(provider)/callback"
        func fail(_ code: String, link: Bool = false) -> Finish {
            link ? Finish(redirect: "\(frontendBase)/dashboard/settings?connect_error=\(code)", session: nil)
                 : Finish(redirect: "\(loginTarget)?error=\(code)", session: nil)
        }
        guard let settings = try? settings(provider) else { return fail("invalid_state") }
        guard let parsed = verifyState(cookie: stateCookie, state: state) else { return fail("invalid_state") }
        let linking = parsed.kind == "link"
        if let providerError { return fail(providerError == "access_denied" ? "access_denied" : "exchange_failed", link: linking) }
        guard let code, !code.isEmpty else { return fail("missing_code", link: linking) }
        let profile: ProviderProfile
        do {
            profile = try await fetchProfile(settings: settings, provider: provider, code: code)
        } catch {
            logger.warning("OAuth exchange failed", metadata: ["provider": "\(provider)", "error": "\(error)"])
            return fail("exchange_failed", link: linking)
        }
        do {
            if linking {
                try await link(profile, provider: provider, userID: parsed.linkUser)
                return Finish(redirect: "\(frontendBase)/dashboard/settings?connected=\(provider)", session: nil)
            }
            let issued = try await signIn(profile, provider: provider, origin: origin)
            return Finish(redirect: loginTarget, session: issued)
        } catch let error as ServiceError {
            return fail(error.code, link: linking)
        } catch {
            logger.error("OAuth sign-in failed", metadata: ["error": "\(error)"])
            return fail("internal_error", link: linking)
        }
    }

    struct ParsedState { var kind: String; var linkUser: String }

    func verifyState(cookie: String?, state: String?) -> ParsedState? {
        guard let cookie, let state else { return nil }
        let parts = cookie.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 5 else { return nil }
        let payload = parts[0..<4].joined(separator: ".")
        guard Secrets.constantTimeEquals(Secrets.hmacHex(payload, key: stateKey), parts[4]),
              Secrets.constantTimeEquals(parts[0], state),
              let expires = Int64(parts[3]), expires > Int64(clock.now().timeIntervalSince1970),
              parts[1] == "login" || parts[1] == "link"
        else { return nil }
        return ParsedState(kind: parts[1], linkUser: parts[2])
    }

    // MARK: Provider calls

    struct ProviderProfile: Sendable {
        var id: String
        var login: String
        var name: String?
        var email: String?
    }

    func fetchProfile(settings: ServerConfig.OAuthProviderSettings, provider: String, code: String) async throws -> ProviderProfile {
        var form = URLComponents()
        form.queryItems = [
            URLQueryItem(name: "client_id", value: settings.clientID),
            URLQueryItem(name: "client_secret", value: settings.clientSecret),
            URLQueryItem(name: "code", value: code),
            URLQueryItem(name: "redirect_uri", value: redirectURI(provider)),
        ]
        var tokenRequest = HTTPClientRequest(url: settings.tokenURL)
        tokenRequest.method = .POST
        tokenRequest.headers.add(name: "Accept", value: "application/json")
        tokenRequest.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        tokenRequest.body = .bytes(ByteBuffer(string: form.percentEncodedQuery ?? ""))
        struct TokenReply: Decodable { var access_token: String? }
        let token = try await Self.fetchJSON(tokenRequest, as: TokenReply.self)
        guard let accessToken = token.access_token, !accessToken.isEmpty else { throw OAuthFailure("no access_token in reply") }

        func apiRequest(_ path: String) -> HTTPClientRequest {
            var r = HTTPClientRequest(url: settings.apiURL.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + path)
            r.headers.add(name: "Authorization", value: "Bearer \(accessToken)")
            r.headers.add(name: "Accept", value: "application/vnd.github+json")
            r.headers.add(name: "User-Agent", value: "wrenn")
            return r
        }
        struct UserReply: Decodable { var id: Int64; var login: String; var name: String?; var email: String? }
        let user = try await Self.fetchJSON(apiRequest("/user"), as: UserReply.self)
        var email = user.email
        if email == nil || email?.isEmpty == true {
            struct EmailReply: Decodable { var email: String; var primary: Bool; var verified: Bool }
            let emails = try await Self.fetchJSON(apiRequest("/user/emails"), as: [EmailReply].self)
            email = emails.first(where: { $0.primary && $0.verified })?.email
        }
        return ProviderProfile(id: String(user.id), login: user.login, name: user.name, email: email)
    }

    static func fetchJSON<T: Decodable>(_ request: HTTPClientRequest, as type: T.Type) async throws -> T {
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 20)
        guard (200..<300).contains(response.status.code) else { throw OAuthFailure("HTTP \(response.status.code) from \(request.url)") }
        return try JSONDecoder().decode(T.self, from: Data(buffer: body))
    }

    struct OAuthFailure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    // MARK: Accounts

    func signIn(_ profile: ProviderProfile, provider: String, origin: SessionService.Origin) async throws -> SessionService.Issued {
        let now = clock.now()
        return try await database.transaction { sql in
            var user: UserRecord
            if let link = try await OAuthLinkRepository.find(provider: provider, providerID: profile.id, sql),
               let linked = try await UserRepository.find(id: link.userId, sql) {
                guard linked.userStatus == .active else {
                    throw ServiceError(.forbidden, "account_deactivated", "this account is not active")
                }
                user = linked
            } else {
                guard let rawEmail = profile.email, let email = try? Validation.email(rawEmail) else {
                    throw ServiceError(.badRequest, "exchange_failed", "the provider gave no verified email")
                }
                if let existing = try await UserRepository.find(email: email, sql) {
                    guard existing.userStatus == .inactive else {
                        throw ServiceError.conflict("email_taken", "an account with this email exists; sign in and connect the provider")
                    }
                    try await UserRepository.delete(id: existing.id, sql)
                }
                let name = (try? Validation.personName(profile.name ?? "")) ?? ((try? Validation.personName(profile.login)) ?? "user")
                user = UserRecord(id: PrefixedID.make(.user), email: email, passwordHash: nil, name: name, isAdmin: 0,
                                  status: UserStatus.active.rawValue, createdAt: now.millis, updatedAt: now.millis, deletedAt: nil)
                try await UserRepository.insert(user, sql)
                user = try await accounts.promoteFirstAdmin(user, sql)
                try await OAuthLinkRepository.insert(.init(provider: provider, providerId: profile.id, userId: user.id, email: email,
                                                           createdAt: now.millis), sql)
                try await audit.record(.init(team: nil, actor: AuditActor(type: "user", id: user.id, name: email), resourceType: "user",
                                             resourceID: user.id, action: "signup_oauth", scope: "user", metadata: ["provider": provider]), sql)
            }
            let team = try await teams.ensureDefaultTeam(for: user, sql)
            try await audit.record(.init(team: team.id, actor: AuditActor(type: "user", id: user.id, name: user.email), resourceType: "session",
                                         resourceID: nil, action: "login_oauth", scope: "user", metadata: ["provider": provider]), sql)
            return try await sessions.issue(user: user, team: team.id, role: team.role, origin: origin, sql)
        }
    }

    func link(_ profile: ProviderProfile, provider: String, userID: String) async throws {
        let now = clock.now().millis
        try await database.transaction { sql in
            guard let user = try await UserRepository.find(id: userID, sql), user.userStatus == .active else {
                throw ServiceError(.badRequest, "invalid_state", "the linking account is not active")
            }
            if let existing = try await OAuthLinkRepository.find(provider: provider, providerID: profile.id, sql) {
                if existing.userId == userID { return }
                throw ServiceError.conflict("already_linked", "this \(provider) account is linked to another Wrenn account")
            }
            if try await OAuthLinkRepository.links(user: userID, sql).contains(where: { $0.provider == provider }) {
                throw ServiceError.conflict("already_linked", "a \(provider) account is already connected")
            }
            try await OAuthLinkRepository.insert(.init(provider: provider, providerId: profile.id, userId: userID,
                                                       email: profile.email ?? "", createdAt: now), sql)
            try await audit.record(.init(team: nil, actor: AuditActor(type: "user", id: userID, name: user.email), resourceType: "user",
                                         resourceID: userID, action: "provider_connect", scope: "user", metadata: ["provider": provider]), sql)
        }
    }

    /// Unlinks `provider` from the caller; refused when it is their only way to sign in.
    public func disconnect(_ principal: Principal, provider: String) async throws {
        let userID = try principal.requireUser()
        try await database.transaction { sql in
            guard let user = try await UserRepository.find(id: userID, sql) else { throw ServiceError.unauthorized() }
            let links = try await OAuthLinkRepository.links(user: userID, sql)
            guard links.contains(where: { $0.provider == provider }) else {
                throw ServiceError(.notFound, "not_found", "provider \"\(provider)\" is not connected")
            }
            guard user.passwordHash != nil || links.count > 1 else {
                throw ServiceError(.badRequest, "last_login_method", "this is your only way to sign in; set a password first")
            }
            try await OAuthLinkRepository.delete(user: userID, provider: provider, sql)
            try await audit.record(.init(team: principal.teamID, actor: principal.actor, resourceType: "user", resourceID: userID,
                                         action: "provider_disconnect", scope: "user", metadata: ["provider": provider]), sql)
        }
    }
}
