import Foundation
import Logging
import SQLKit
import Testing
import WrennServer
import WrennWire

@Suite("activation and reset mail through a real SMTP server")
struct MailDeliveryTests {
    @Test(arguments: TestBackend.available)
    func signupMailIsDeliveredAndItsLinkActivates(_ backend: TestBackend) async throws {
        let sink = SMTPSink()
        try await sink.start()
        let port = try await sink.port
        do {
            try await TestControlPlane.run(backend, configure: { config in
                config.smtp = .init(host: "127.0.0.1", port: port, username: nil, password: nil, fromAddress: "noreply@wrenn.test", requireTLS: false)
            }) { cp in
                let b = cp.browser()
                #expect(try await b.post("/v1/auth/signup", json: ["email": "mail@example.com", "password": "long enough", "name": "Mae"]).status == .created)
                let mails = try await sink.waitForMessages(count: 1)
                let activation = try #require(mails.first)
                #expect(activation.rcptTo == ["mail@example.com"])
                #expect(activation.subject == "Activate your Wrenn account")
                #expect(activation.body.contains("http://app.localhost/activate?token="))
                let token = try #require(TestControlPlane.token(in: activation.body, path: "activate"))
                let activated = try await b.post("/v1/auth/activate", json: ["token": token])
                #expect(activated.status == .ok)
                #expect(try activated.decode(SessionResponse.self).name == "Mae")

                #expect(try await cp.browser().post("/v1/me/password/reset", json: ["email": "mail@example.com"]).status == .noContent)
                let reset = try #require(try await sink.waitForMessages(count: 2).last)
                #expect(reset.subject == "Reset your Wrenn password")
                let resetToken = try #require(TestControlPlane.token(in: reset.body, path: "reset-password"))
                #expect(try await cp.browser().post("/v1/me/password/reset/confirm", json: ["token": resetToken, "new_password": "via the mail"]).status == .noContent)
                #expect(try await cp.browser().post("/v1/auth/login", json: ["email": "mail@example.com", "password": "via the mail"]).status == .ok)

                // The outbox records delivery.
                let statuses = try await cp.assembly.database.read { sql in
                    try await sql.raw("SELECT status FROM mail_outbox ORDER BY created_at").all(decodingColumn: "status", as: String.self)
                }
                #expect(statuses == ["sent", "sent"])
            }
        } catch {
            await sink.stop()
            throw error
        }
        await sink.stop()
    }

    @Test func unreachableSMTPDoesNotFailSignupAndIsRecorded() async throws {
        try await TestControlPlane.run(.sqlite, configure: { config in
            // Port 9 on loopback: nothing listens, the connection is refused at once.
            config.smtp = .init(host: "127.0.0.1", port: 9, username: nil, password: nil, fromAddress: "noreply@wrenn.test", requireTLS: false)
        }) { cp in
            #expect(try await cp.browser().post("/v1/auth/signup", json: ["email": "down@example.com", "password": "long enough", "name": "D"]).status == .created)
            let status = try await cp.assembly.database.read { sql in
                try await sql.raw("SELECT status FROM mail_outbox").first(decodingColumn: "status", as: String.self)
            }
            #expect(status == "failed")
        }
    }
}
