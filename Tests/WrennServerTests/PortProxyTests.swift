import AsyncHTTPClient
import Crypto
import Foundation
import HTTPTypes
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Testing
@testable import WrennServer
import WrennTestSupport
import WrennWire

/// The capsule port proxy end to end: a real HTTP (and WebSocket) server runs inside an envd-backed capsule, started
/// through the API with a background exec, and is reached through the control plane by `Host:
/// {port}-{capsule}.localhost:8080` → host agent → guest port.
@Suite("capsule port proxy", .serialized)
struct PortProxyTests {
    /// The server inside the capsule: GET answers its path and the headers it saw as JSON, POST answers the body's
    /// length and SHA-256, a WebSocket upgrade echoes text frames with an `echo:` prefix.
    static let guestServer = #"""
    import base64, hashlib, json, socketserver, sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def log_message(self, *a): pass
        def answer(self, status, body, ctype="application/json"):
            self.send_response(status); self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body))); self.send_header("X-Guest", "yes"); self.end_headers()
            self.wfile.write(body)
        def do_GET(self):
            if self.headers.get("Upgrade", "").lower() == "websocket": return self.websocket()
            if self.path.startswith("/missing"): return self.answer(404, b"guest says no", "text/plain")
            self.answer(200, json.dumps({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}}).encode())
        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0")); h = hashlib.sha256(); left = n
            while left > 0:
                chunk = self.rfile.read(min(left, 65536))
                if not chunk: break
                h.update(chunk); left -= len(chunk)
            self.answer(200, json.dumps({"length": n, "sha256": h.hexdigest()}).encode())
        def websocket(self):
            accept = base64.b64encode(hashlib.sha1((self.headers["Sec-WebSocket-Key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
            self.send_response(101); self.send_header("Upgrade", "websocket"); self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", accept); self.end_headers(); self.wfile.flush()
            while True:
                b = self.rfile.read(2)
                if len(b) < 2: return
                op = b[0] & 15; n = b[1] & 127
                if n == 126: n = int.from_bytes(self.rfile.read(2), "big")
                elif n == 127: n = int.from_bytes(self.rfile.read(8), "big")
                mask = self.rfile.read(4) if b[1] & 128 else b"\0\0\0\0"
                data = bytes(x ^ mask[i % 4] for i, x in enumerate(self.rfile.read(n)))
                if op == 8: self.wfile.write(b"\x88\x00"); self.wfile.flush(); return
                if op == 1:
                    out = b"echo:" + data
                    head = bytes([0x81, len(out)]) if len(out) < 126 else bytes([0x81, 126]) + len(out).to_bytes(2, "big")
                    self.wfile.write(head + out); self.wfile.flush()
    s = ThreadingHTTPServer(("127.0.0.1", 0), H)
    open(sys.argv[1] + ".tmp", "w").write(str(s.server_address[1]))
    import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    s.serve_forever()
    """#

    /// Starts the guest server in `capsule` through the API and returns the port it listens on.
    static func startGuestServer(_ sdk: Browser, _ capsule: String) async throws -> Int {
        let dir = NSTemporaryDirectory() + "wrenn-port-proxy-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try guestServer.write(toFile: dir + "/server.py", atomically: true, encoding: .utf8)
        let started = try await CapsuleAPITests.exec(sdk, capsule, "exec python3 \(dir)/server.py \(dir)/port",
                                                     extra: ["background": true, "tag": "web"])
        #expect(started.status == .ok || started.status == .accepted)
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            if let text = try? String(contentsOfFile: dir + "/port", encoding: .utf8), let port = Int(text) { return port }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw LocalAgentError("the guest server did not start")
    }

    /// A client that shows redirects instead of following them (never shut down: it lives as long as the test process).
    static let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(redirectConfiguration: .disallow))

    /// One request to the control plane on loopback with an explicit `Host`.
    static func send(_ cpPort: Int, host: String, _ path: String, method: HTTPMethod = .GET, key: String?,
                     headers: [(String, String)] = [], body: HTTPClientRequest.Body? = nil) async throws -> (HTTPClientResponse, ByteBuffer) {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(cpPort)\(path)")
        request.method = method
        request.headers.replaceOrAdd(name: "Host", value: host)
        if let key { request.headers.add(name: "X-API-Key", value: key) }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = body
        let response = try await http.execute(request, timeout: .seconds(60))
        let collected = try await response.body.collect(upTo: 16 << 20)
        return (response, collected)
    }

    static func json(_ buffer: ByteBuffer) -> [String: Any] {
        ((try? JSONSerialization.jsonObject(with: Data(buffer: buffer))) as? [String: Any]) ?? [:]
    }

    static func errorCode(_ buffer: ByteBuffer) -> String? {
        (try? WireCoding.makeDecoder().decode(ErrorEnvelope.self, from: Data(buffer: buffer)))?.error.code
    }

    @Test(arguments: TestBackend.available)
    func httpThroughTheControlPlane(_ backend: TestBackend) async throws {
        try await CapsuleAPITests.withPlatform(backend) { cp, _, sdk in
            let cpPort = try #require(cp.client.port)
            let key = try #require(sdk.apiKey)
            let id = try await sdk.post("/v1/capsules", json: [:]).decode(Capsule.self).id
            _ = try await CapsuleAPITests.wait(sdk, id, for: .running)
            let port = try await Self.startGuestServer(sdk, id)
            let host = "\(port)-\(id).localhost:8080"

            // GET with path and query; the guest sees neither the API key nor the proxy cookie, but its own cookie
            // and (restored) Authorization arrive.
            let before = try await sdk.get("/v1/capsules/\(id)").decode(Capsule.self).lastActiveAt
            cp.clock.advance(by: 5)
            let (hello, helloBody) = try await Self.send(cpPort, host: host, "/some/where?x=1&y=two", key: key,
                                                    headers: [("Authorization", "token guest-secret"),
                                                              ("Cookie", "app=1; wrenn_proxy_token=v1.x.y.z")])
            #expect(hello.status == .ok)
            #expect(hello.headers.first(name: "X-Guest") == "yes")
            let seen = Self.json(helloBody)
            #expect(seen["path"] as? String == "/some/where?x=1&y=two")
            let guestHeaders = seen["headers"] as? [String: String] ?? [:]
            #expect(guestHeaders["x-api-key"] == nil)
            #expect(guestHeaders["authorization"] == "token guest-secret")
            #expect(guestHeaders["cookie"] == "app=1")
            #expect(guestHeaders["x-forwarded-host"] == host)
            #expect(guestHeaders["x-wrenn-forwarded-authorization"] == nil)
            // Activity: last_active_at moved.
            let after = try await sdk.get("/v1/capsules/\(id)").decode(Capsule.self).lastActiveAt
            #expect(after != nil && after != before)

            // A key in the query is not passed on to the capsule's app.
            let (keyed, keyedBody) = try await Self.send(cpPort, host: host, "/q?x=1&wrenn_api_key=\(key)", key: key)
            #expect(keyed.status == .ok)
            #expect(Self.json(keyedBody)["path"] as? String == "/q?x=1")

            // The guest's own statuses pass through unchanged.
            let (missing, missingBody) = try await Self.send(cpPort, host: host, "/missing", key: key)
            #expect(missing.status == .notFound)
            #expect(String(buffer: missingBody) == "guest says no")

            // A 32 MiB upload streams through; the guest hashes what it got.
            var payload = [UInt8](repeating: 0, count: 32 << 20)
            for i in stride(from: 0, to: payload.count, by: 4096) { payload[i] = UInt8(truncatingIfNeeded: i / 4096) }
            let digest = SHA256.hash(data: payload).map { String(format: "%02x", $0) }.joined()
            let (posted, postedBody) = try await Self.send(cpPort, host: host, "/upload", method: .POST, key: key,
                                                      body: .bytes(ByteBuffer(bytes: payload)))
            #expect(posted.status == .ok)
            #expect(Self.json(postedBody)["sha256"] as? String == digest)
            #expect(Self.json(postedBody)["length"] as? Int == payload.count)

            // The API itself still answers on its own host.
            #expect(try await sdk.get("/v1/capsules/\(id)").status == .ok)
        }
    }

    @Test(arguments: TestBackend.available)
    func refusals(_ backend: TestBackend) async throws {
        try await CapsuleAPITests.withPlatform(backend) { cp, _, sdk in
            let cpPort = try #require(cp.client.port)
            let key = try #require(sdk.apiKey)
            let id = try await sdk.post("/v1/capsules", json: [:]).decode(Capsule.self).id
            _ = try await CapsuleAPITests.wait(sdk, id, for: .running)
            let port = try await Self.startGuestServer(sdk, id)
            let host = "\(port)-\(id).localhost:8080"

            let (noKey, noKeyBody) = try await Self.send(cpPort, host: host, "/", key: nil)
            #expect(noKey.status == .unauthorized)
            #expect(Self.errorCode(noKeyBody) == "unauthorized")
            let (badKey, _) = try await Self.send(cpPort, host: host, "/", key: "wrn_" + String(repeating: "0", count: 32))
            #expect(badKey.status == .unauthorized)
            let (badPort, badPortBody) = try await Self.send(cpPort, host: "70000-\(id).localhost:8080", "/", key: key)
            #expect(badPort.status == .badRequest)
            #expect(Self.errorCode(badPortBody) == "invalid_request")
            let (unknown, _) = try await Self.send(cpPort, host: "\(port)-cl-00000000000000000000000000.localhost:8080", "/", key: key)
            #expect(unknown.status == .notFound)

            // Another team's key: 404, never 403.
            let other = try await cp.signedInUser(email: "other-team@e2e.test")
            let otherKey = try #require(try await other.post("/v1/api-keys", json: ["name": "other"]).decode(APIKeyResponse.self).key)
            let (foreign, foreignBody) = try await Self.send(cpPort, host: host, "/", key: otherKey)
            #expect(foreign.status == .notFound)
            #expect(Self.errorCode(foreignBody) == "not_found")

            // Paused → 409.
            #expect(try await sdk.post("/v1/capsules/\(id)/pause").status == .accepted)
            _ = try await CapsuleAPITests.wait(sdk, id, for: .paused)
            let (paused, pausedBody) = try await Self.send(cpPort, host: host, "/", key: key)
            #expect(paused.status == .conflict)
            #expect(Self.errorCode(pausedBody) == "invalid_state")
        }
    }

    @Test func browserCookieAndWebSocketEcho() async throws {
        try await CapsuleAPITests.withPlatform { cp, _, sdk in
            let cpPort = try #require(cp.client.port)
            let key = try #require(sdk.apiKey)
            let id = try await sdk.post("/v1/capsules", json: [:]).decode(Capsule.self).id
            _ = try await CapsuleAPITests.wait(sdk, id, for: .running)
            let port = try await Self.startGuestServer(sdk, id)
            let host = "\(port)-\(id).localhost:8080"

            // First visit with the key in the query: redirect without it, and a host-only HttpOnly cookie.
            let (redirect, redirectBody) = try await Self.send(cpPort, host: host, "/page?a=1&wrenn_api_key=\(key)", key: nil)
            #expect(redirect.status == .seeOther, "\(String(buffer: redirectBody))")
            #expect(redirect.headers.first(name: "Location") == "/page?a=1")
            let setCookie = try #require(redirect.headers.first(name: "Set-Cookie"))
            #expect(setCookie.contains("HttpOnly"))
            #expect(!setCookie.lowercased().contains("domain="))
            #expect(!setCookie.contains(key))
            let cookie = try #require(setCookie.split(separator: ";").first.map(String.init))
            let (page, pageBody) = try await Self.send(cpPort, host: host, "/page?a=1", key: nil, headers: [("Cookie", cookie)])
            #expect(page.status == .ok)
            #expect((Self.json(pageBody)["headers"] as? [String: String])?["cookie"] == nil)
            // The cookie opens only the port it was issued for.
            let (elsewhere, _) = try await Self.send(cpPort, host: "\(port == 65535 ? 1 : port + 1)-\(id).localhost:8080", "/", key: nil,
                                                headers: [("Cookie", cookie)])
            #expect(elsewhere.status == .unauthorized)

            // WebSocket echo through control plane → agent → guest.
            let (status, socket) = try RawWebSocket.connect(port: cpPort, host: host, path: "/ws", headers: ["X-API-Key": key])
            #expect(status.contains("101"))
            let ws = try #require(socket)
            try ws.send(text: "hello through the proxy")
            let frame = try ws.receive()
            #expect(frame.opcode == 1)
            #expect(String(decoding: frame.payload, as: UTF8.self) == "echo:hello through the proxy")

            // No key: refused before the upgrade, 401 with the envelope.
            let refused = try RawWebSocket.handshake(port: cpPort, host: host, path: "/ws", headers: [:])
            #expect(refused.status == 401, "\(refused.statusLine)")
            #expect(refused.errorCode == "unauthorized")
            #expect(refused.socket == nil)
        }
    }

    @Test func hostParsing() {
        func match(_ host: String) -> String {
            switch PortProxyAddress.match(host: host, domain: "localhost:8080") {
            case .none: "none"
            case .badPort: "bad"
            case .target(let address): "\(address.port) \(address.capsuleID)"
            }
        }
        #expect(match("8888-cl-abc.localhost:8080") == "8888 cl-abc")
        #expect(match("8888-CL-ABC.LOCALHOST") == "8888 cl-abc")
        #expect(match("localhost:8080") == "none")
        #expect(match("8888-cl-abc.example.com") == "none")
        #expect(PortProxyAddress.match(host: "8888-cl-abc.example.com:443", domain: nil) == .target(PortProxyAddress(port: 8888, capsuleID: "cl-abc")))
        #expect(PortProxyAddress.match(host: "api.example.com", domain: nil) == .none)
        #expect(PortProxyAddress.match(host: "8888-cl-abc.", domain: nil) == .none)
        #expect(match("app.localhost:8080") == "none")
        #expect(match("0-cl-abc.localhost:8080") == "bad")
        #expect(match("99999999999999999999-cl-abc.localhost") == "bad")
        #expect(PortProxy.withoutKey("/p?a=1&wrenn_api_key=k&b=2") == "/p?a=1&b=2")
        #expect(PortProxy.withoutKey("/p?wrenn_api_key=k") == "/p")
        #expect(PortProxy.strippingProxyCookie("a=1; wrenn_proxy_token=x; b=2") == "a=1; b=2")
        #expect(PortProxy.strippingProxyCookie("wrenn_proxy_token=x") == nil)
    }
}
