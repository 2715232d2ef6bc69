import Foundation
import Testing
import WrennWire

@Suite("envd auth")
struct AuthTests {
    @Test("health answers without a token; everything else is 401 with the error envelope")
    func healthIsOpenEverythingElseNeedsTheToken() async throws {
        let envd = try await EnvdProcess.start()
        let client = EnvdClient(envd)

        let health = try await client.request(.GET, "/health", authorized: false)
        #expect(health.status == 200)
        #expect(try health.decode(EnvdHealth.self).status == "ok")

        let missing = try await client.request(.GET, "/processes", authorized: false)
        #expect(missing.status == 401)
        #expect(try missing.decode(ErrorEnvelope.self).error.code == "unauthorized")

        let wrong = try await EnvdClient(envd, token: "wrong-token").post("/exec", json: ExecRequest(cmd: "touch", args: ["/tmp/envd-auth-must-not-exist"]))
        #expect(wrong.status == 401)
        #expect(try wrong.decode(ErrorEnvelope.self).error.code == "unauthorized")
        #expect(!FileManager.default.fileExists(atPath: "/tmp/envd-auth-must-not-exist"))

        let right = try await client.get("/processes")
        #expect(right.status == 200)
    }

    @Test("a WebSocket upgrade with a wrong token is refused")
    func webSocketWithWrongTokenIsRefused() async throws {
        let envd = try await EnvdProcess.start()
        let client = EnvdClient(envd)
        await #expect(throws: (any Error).self) {
            try await client.webSocket("/pty", token: "wrong") { _, _ in
                Issue.record("upgrade must not succeed")
            }
        }
    }

    @Test("after restore the new token works and the old one does not; the capsule id reaches processes")
    func restoreReplacesIdentity() async throws {
        let envd = try await EnvdProcess.start()
        var client = EnvdClient(envd)
        let prepare = try await client.request(.POST, "/snapshot/prepare")
        #expect(prepare.status == 204)

        let restored = try await client.post(
            "/snapshot/restored",
            json: EnvdRestoreRequest(capsuleId: "cl-restoredclone", accessToken: "fresh-token", defaultEnv: ["FROM_RESTORE": "yes"], entropy: Data("host entropy".utf8).base64EncodedString())
        )
        #expect(restored.status == 200)
        let answer = try restored.decode(EnvdRestoreResponse.self)
        #expect(answer.capsuleId == "cl-restoredclone")
        #expect(answer.rngReseeded)

        let old = try await client.get("/processes")
        #expect(old.status == 401)
        client.token = "fresh-token"
        let exec = try await client.post("/exec", json: ExecRequest(cmd: "/bin/sh", args: ["-c", "echo $WRENN_CAPSULE_ID $FROM_RESTORE"]))
        #expect(exec.status == 200)
        let response = try exec.decode(ExecResponse.self)
        #expect(response.stdout == "cl-restoredclone yes\n")
        #expect(response.sandboxId == "cl-restoredclone")
    }

    @Test("restore with nameservers rewrites the resolver file; anything but IP literals is refused and changes nothing")
    func restoreWritesNameservers() async throws {
        let resolv = FileManager.default.temporaryDirectory.appendingPathComponent("envd-resolv-\(UUID().uuidString)").path
        try "nameserver 192.0.2.1\n".write(toFile: resolv, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: resolv) }
        let envd = try await EnvdProcess.start(extraArguments: ["--resolv-conf", resolv])
        let client = EnvdClient(envd)

        let injected = try await client.post("/snapshot/restored", json: EnvdRestoreRequest(nameservers: ["1.1.1.1\nsearch evil"]))
        #expect(injected.status == 400)
        #expect(try injected.decode(ErrorEnvelope.self).error.message.contains("not an IP address"))
        let tooMany = try await client.post("/snapshot/restored", json: EnvdRestoreRequest(nameservers: ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"]))
        #expect(tooMany.status == 400)
        #expect(try String(contentsOfFile: resolv, encoding: .utf8) == "nameserver 192.0.2.1\n")

        let ok = try await client.post("/snapshot/restored", json: EnvdRestoreRequest(nameservers: ["198.51.100.7", "2001:db8::53"]))
        #expect(ok.status == 200)
        let text = try String(contentsOfFile: resolv, encoding: .utf8)
        #expect(text.contains("nameserver 198.51.100.7\nnameserver 2001:db8::53\n"))
        #expect(!text.contains("192.0.2.1"))

        // Without nameservers the file is left alone.
        let plain = try await client.post("/snapshot/restored", json: EnvdRestoreRequest(hostname: nil))
        #expect(plain.status == 200)
        #expect(try String(contentsOfFile: resolv, encoding: .utf8) == text)
    }
}
