import Foundation
import Logging
import WrennWire

/// Sends the control plane's emails and keeps a record of each in the `mail_outbox` table.
///
/// With SMTP configured, mail goes through `transport` (the SMTP client) and the outbox row says `sent` or
/// `failed` with the server's reply. Without SMTP (the dev default) the row says `logged` and the mail's text,
/// which holds the link, is written to the log so a developer can follow it.
public struct Mailer: Sendable {
    /// Delivers one message: recipient, subject, plain-text body.
    public typealias Transport = @Sendable (_ to: String, _ subject: String, _ body: String) async throws -> Void

    let database: Database
    let clock: any WallClock
    let logger: Logger
    let transport: Transport?

    public init(database: Database, clock: any WallClock, logger: Logger, transport: Transport?) {
        self.database = database
        self.clock = clock
        self.logger = logger
        self.transport = transport
    }

    /// Sends `body` to `to`. Never throws: a delivery failure is logged and recorded, not shown to the requester
    /// (password-reset answers must not reveal whether an address exists).
    func send(to: String, subject: String, body: String) async {
        var status = "logged"
        var failure: String?
        if let transport {
            do {
                try await transport(to, subject, body)
                status = "sent"
            } catch {
                status = "failed"
                failure = String(describing: error)
                logger.error("mail delivery failed", metadata: ["to": "\(to)", "subject": "\(subject)", "error": "\(error)"])
            }
        } else {
            logger.notice("mail (no SMTP configured)", metadata: ["to": "\(to)", "subject": "\(subject)", "body": "\(body)"])
        }
        let outcome = status, failureText = failure
        do {
            try await database.read { sql in
                try await MailOutboxRepository.insert(id: "mail-" + Secrets.randomHex(bytes: 12), to: to, subject: subject, body: body,
                                                      status: outcome, error: failureText, at: clock.now().millis, sql)
            }
        } catch {
            logger.error("could not record mail in the outbox", metadata: ["error": "\(error)"])
        }
    }
}

/// The texts of the emails the control plane sends.
enum MailTemplates {
    static func activation(name: String, link: String) -> (subject: String, body: String) {
        ("Activate your Wrenn account",
         """
         Hi \(name),

         Welcome to Wrenn. Activate your account within 30 minutes by opening this link:

         \(link)

         If you did not sign up, ignore this email.
         """)
    }

    static func passwordReset(name: String, link: String) -> (subject: String, body: String) {
        ("Reset your Wrenn password",
         """
         Hi \(name),

         Someone asked to reset the password of your Wrenn account. Open this link within 15 minutes to choose a new one:

         \(link)

         If it was not you, ignore this email; your password stays as it is.
         """)
    }
}
