import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import SQLKit
import Testing
import WrennServer
import WrennWire

/// A real control plane for one test: its own database (SQLite file or PostgreSQL database), a manual clock,
/// served over real HTTP on a loopback port.
struct TestControlPlane {
    let client: any TestClientProtocol
    let clock: ManualWallClock
    let assembly: ControlPlane.Assembly
    let backend: TestBackend

    /// Starts a control plane on `backend`, runs `body` against it, and tears everything down.
    static func run(_ backend: TestBackend, mailTransport: Mailer.Transport? = nil,
                    configure: (inout ServerConfig) -> Void = { _ in },
                    _ body: @Sendable (TestControlPlane) async throws -> Void) async throws {
        let (url, drop) = try await backend.makeDatabase()
        let dataDir = FileManager.default.temporaryDirectory.appendingPathComponent("wrenn-data-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
        var config = ServerConfig(dataDirectory: dataDir, databaseURL: url, publicURL: "http://localhost:8080",
                                  frontendURL: "http://app.localhost", secret: String(repeating: "s", count: 40), bcryptCost: 4)
        configure(&config)
        var logger = Logger(label: "wrenn.test")
        logger.logLevel = .warning
        let clock = ManualWallClock()
        let assembly = try await ControlPlane.assemble(config: config, clock: clock, logger: logger, mailTransport: mailTransport)
        let app = ControlPlane.makeApplication(assembly, host: "127.0.0.1", port: 0, logger: logger)
        do {
            try await app.test(.live) { client in
                try await body(TestControlPlane(client: client, clock: clock, assembly: assembly, backend: backend))
            }
        } catch {
            await drop()
            try? FileManager.default.removeItem(atPath: dataDir)
            throw error
        }
        await drop()
        try? FileManager.default.removeItem(atPath: dataDir)
    }

    /// A browser-like client with its own cookie jar.
    func browser() -> Browser { Browser(client: client) }

    /// The newest mail sent to `to` from the outbox table (the dev path without SMTP), and the token in its link.
    func lastMailToken(to: String, path: String) async throws -> String {
        let body = try await assembly.database.read { sql in
            try await sql.raw("""
                SELECT body FROM mail_outbox WHERE to_address = \(bind: to) AND body LIKE \(bind: "%/\(path)?token=%")
                ORDER BY created_at DESC, id DESC
                """)
                .first(decodingColumn: "body", as: String.self)
        }
        guard let body else { throw TestBackendError("no mail to \(to)") }
        return try #require(Self.token(in: body, path: path))
    }

    static func token(in text: String, path: String) -> String? {
        guard let range = text.range(of: "/\(path)?token=") else { return nil }
        return String(text[range.upperBound...].prefix { $0.isHexDigit })
    }

    /// Signs up, activates via the mailed token, and returns the signed-in browser.
    func signedInUser(email: String, name: String = "Test User", password: String = "correct horse") async throws -> Browser {
        let b = browser()
        let r = try await b.post("/v1/auth/signup", json: ["email": email, "password": password, "name": name])
        #expect(r.status == .created)
        let token = try await lastMailToken(to: email.lowercased(), path: "activate")
        let a = try await b.post("/v1/auth/activate", json: ["token": token])
        #expect(a.status == .ok)
        return b
    }
}

/// An HTTP client that keeps cookies like a browser and echoes the CSRF cookie in `X-CSRF-Token`.
final class Browser: @unchecked Sendable {
    let client: any TestClientProtocol
    private let lock = NSLock()
    private var _cookies: [String: String] = [:]
    /// When false, the CSRF header is not sent (to test CSRF enforcement).
    var sendCSRF = true
    var apiKey: String?

    init(client: any TestClientProtocol) { self.client = client }

    var cookies: [String: String] {
        get { lock.withLock { _cookies } }
        set { lock.withLock { _cookies = newValue } }
    }

    /// The cookie jar as a `Cookie` header value.
    var cookieHeader: String { cookies.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: "; ") }

    func get(_ uri: String) async throws -> TestResponse { try await send(uri, .get, body: nil) }
    func delete(_ uri: String, json: [String: Any]? = nil) async throws -> TestResponse { try await send(uri, .delete, body: json.map(Self.encode)) }
    func post(_ uri: String, json: [String: Any]? = [:]) async throws -> TestResponse { try await send(uri, .post, body: json.map(Self.encode)) }
    func patch(_ uri: String, json: [String: Any]) async throws -> TestResponse { try await send(uri, .patch, body: Self.encode(json)) }
    func post(_ uri: String, raw: String) async throws -> TestResponse { try await send(uri, .post, body: ByteBuffer(string: raw)) }

    func send(_ uri: String, _ method: HTTPRequest.Method, body: ByteBuffer?, extraHeaders: HTTPFields = [:]) async throws -> TestResponse {
        var headers = extraHeaders
        let jar = cookies
        if !jar.isEmpty { headers[.cookie] = cookieHeader }
        if sendCSRF, let csrf = jar["wrenn_csrf"] { headers[HTTPField.Name("X-CSRF-Token")!] = csrf }
        if let apiKey { headers[HTTPField.Name("X-API-Key")!] = apiKey }
        if body != nil, headers[.contentType] == nil { headers[.contentType] = "application/json" }
        let response = try await client.execute(uri: uri, method: method, headers: headers, body: body)
        absorbCookies(response)
        return response
    }

    func absorbCookies(_ response: TestResponse) {
        for field in response.headers[values: .setCookie] {
            let pair = field.split(separator: ";", maxSplits: 1)[0]
            guard let eq = pair.firstIndex(of: "=") else { continue }
            let name = String(pair[..<eq]).trimmingCharacters(in: .whitespaces)
            let value = String(pair[pair.index(after: eq)...])
            let expired = field.lowercased().contains("max-age=0")
            lock.withLock {
                if expired || value.isEmpty { _cookies[name] = nil } else { _cookies[name] = value }
            }
        }
    }

    static func encode(_ json: [String: Any]) -> ByteBuffer {
        ByteBuffer(bytes: (try? JSONSerialization.data(withJSONObject: json)) ?? Data())
    }
}

extension TestResponse {
    /// The body decoded as `T` with the wire decoder.
    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try WireCoding.makeDecoder().decode(T.self, from: Data(body.readableBytesView))
    }

    /// The error envelope's code, if the body is one.
    var errorCode: String? { (try? decode(ErrorEnvelope.self))?.error.code }
    var errorMessage: String? { (try? decode(ErrorEnvelope.self))?.error.message }

    /// The body as a JSON object.
    var json: [String: Any] { ((try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any]) ?? [:] }
}
