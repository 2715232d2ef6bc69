import Foundation
import Logging
import Testing
@testable import WrennServer

/// End-to-end tests against a real SMTP server (aiosmtpd via `SMTPSink`), plus unit tests of the
/// reply parser, the EHLO parser and the message formatter.
@Suite("SMTPClientTests")
struct SMTPClientTests {
    static let logger: Logger = {
        var logger = Logger(label: "wrenn.test.smtp")
        logger.logLevel = .info
        return logger
    }()

    /// Starts a sink, runs `body`, always stops the sink.
    private func withSink<T>(
        _ options: SMTPSink.Options = .init(),
        _ body: (SMTPSink) async throws -> T
    ) async throws -> T {
        let sink = SMTPSink(options: options)
        try await sink.start()
        do {
            let result = try await body(sink)
            await sink.stop()
            return result
        } catch {
            await sink.stop()
            throw error
        }
    }

    private func client(_ configuration: SMTPConfiguration) -> SMTPClient {
        SMTPClient(configuration: configuration, logger: Self.logger)
    }

    // MARK: delivery

    @Test func plainDeliveryWithHeadersBodyAndDotStuffing() async throws {
        try await withSink { sink in
            var configuration = try await sink.clientConfiguration(fromAddress: "noreply@wrenn.test")
            configuration.fromName = "Wrenn"
            let body = "Hello,\n.hidden line starts with a dot\n..two dots\n.\nTrailing line\n"
            try await client(configuration).send(to: "alice@example.com", subject: "Activate your account", textBody: body)

            let mails = try await sink.waitForMessages(count: 1)
            #expect(mails.count == 1)
            let mail = try #require(mails.first)
            #expect(mail.mailFrom == "noreply@wrenn.test")
            #expect(mail.rcptTo == ["alice@example.com"])
            #expect(mail.to == "alice@example.com")
            #expect(mail.from == "Wrenn <noreply@wrenn.test>")
            #expect(mail.subject == "Activate your account")
            #expect(mail.body == body)
            #expect(mail.headers["mime-version"] == "1.0")
            #expect(mail.headers["content-type"]?.lowercased() == "text/plain; charset=\"utf-8\"" || mail.headers["content-type"]?.lowercased() == "text/plain; charset=utf-8")
            #expect(mail.headers["content-transfer-encoding"] == "7bit")
            let messageID = try #require(mail.headers["message-id"])
            #expect(messageID.hasPrefix("<") && messageID.hasSuffix("@wrenn.test>"))
            let date = try #require(mail.headers["date"])
            #expect(date.hasSuffix("+0000"))
            #expect(!mail.tls)
            #expect(mail.authenticatedAs == nil)
            // CRLF everywhere: no bare LF in what the server received.
            let raw = Array(mail.raw.utf8)
            for (index, byte) in raw.enumerated() where byte == UInt8(ascii: "\n") {
                #expect(index > 0 && raw[index - 1] == UInt8(ascii: "\r"))
            }
            // The received (unstuffed) text keeps the single leading dot.
            #expect(mail.raw.contains("\r\n.hidden line starts with a dot\r\n"))
        }
    }

    @Test func nonASCIISubjectAndBodyRoundTrip() async throws {
        try await withSink { sink in
            let configuration = try await sink.clientConfiguration()
            let subject = "Aktivieren Sie Ihr Wrenn-Konto – Grüße aus Zürich 🎉 und noch ein bisschen mehr Text, damit gefaltet wird"
            let longLine = String(repeating: "ä", count: 700)  // 1400 bytes: longer than SMTP's 998 limit
            let body = "Grüße,\n\(longLine)\nline with trailing space \n.dot ü\n= equals sign\n"
            try await client(configuration).send(to: "bob@example.com", subject: subject, textBody: body)

            let mail = try #require(try await sink.waitForMessages(count: 1).first)
            #expect(mail.subject == subject)
            #expect(mail.body == body)
            #expect(mail.headers["content-transfer-encoding"] == "quoted-printable")
            #expect(mail.raw.contains("Subject: =?UTF-8?B?"))
            for line in mail.raw.components(separatedBy: "\r\n") {
                #expect(line.utf8.count <= 998)
            }
        }
    }

    @Test func startTLSDelivery() async throws {
        try await withSink(.init(tls: .startTLS, requireStartTLS: true)) { sink in
            let configuration = try await sink.clientConfiguration()
            #expect(configuration.requireTLS)
            try await client(configuration).send(to: "carol@example.com", subject: "Over TLS", textBody: "secret link\n")
            let mail = try #require(try await sink.waitForMessages(count: 1).first)
            #expect(mail.tls)
            #expect(mail.body == "secret link\n")
        }
    }

    @Test func startTLSConnectsByName() async throws {
        try await withSink(.init(tls: .startTLS)) { sink in
            var configuration = try await sink.clientConfiguration()
            configuration.host = "localhost"
            try await client(configuration).send(to: "carol@example.com", subject: "By name", textBody: "hi\n")
            #expect(try await sink.waitForMessages(count: 1).first?.tls == true)
        }
    }

    @Test func certificateNameIsVerified() async throws {
        // Certificate valid only for mail.wrenn.test (no IP SAN), trusted as CA.
        try await withSink(.init(tls: .startTLS, certificateSubjectAltNames: "DNS:mail.wrenn.test")) { sink in
            var configuration = try await sink.clientConfiguration()
            configuration.tlsServerName = "mail.wrenn.test"
            try await client(configuration).send(to: "carol@example.com", subject: "Right name", textBody: "hi\n")
            #expect(try await sink.waitForMessages(count: 1).count == 1)

            for wrongName in ["other.wrenn.test", nil] {
                configuration.tlsServerName = wrongName
                let error = await #expect(throws: SMTPError.self) {
                    try await client(configuration).send(to: "carol@example.com", subject: "Wrong name", textBody: "hi\n")
                }
                guard case .tlsFailure = error else {
                    Issue.record("expected tlsFailure for \(wrongName ?? "127.0.0.1"), got \(String(describing: error))")
                    continue
                }
            }
            #expect(try await sink.messages().count == 1)
        }
    }

    @Test func implicitTLSDelivery() async throws {
        try await withSink(.init(tls: .implicit)) { sink in
            let configuration = try await sink.clientConfiguration()
            #expect(configuration.implicitTLS)
            try await client(configuration).send(to: "dave@example.com", subject: "SMTPS", textBody: "hi\n")
            let mail = try #require(try await sink.waitForMessages(count: 1).first)
            #expect(mail.tls)
        }
    }

    @Test func untrustedCertificateFailsTheHandshake() async throws {
        try await withSink(.init(tls: .startTLS)) { sink in
            var configuration = try await sink.clientConfiguration()
            configuration.tlsTrust = .system
            let error = await #expect(throws: SMTPError.self) {
                try await client(configuration).send(to: "eve@example.com", subject: "x", textBody: "x")
            }
            guard case .tlsFailure = error else {
                Issue.record("expected tlsFailure, got \(String(describing: error))")
                return
            }
            #expect(try await sink.messages().isEmpty)
        }
    }

    @Test func insecureNoVerificationStillEncrypts() async throws {
        try await withSink(.init(tls: .startTLS)) { sink in
            var configuration = try await sink.clientConfiguration()
            configuration.tlsTrust = .insecureNoVerification
            try await client(configuration).send(to: "eve@example.com", subject: "x", textBody: "x")
            #expect(try await sink.waitForMessages(count: 1).first?.tls == true)
        }
    }

    @Test func requireTLSFailsWhenStartTLSIsNotOffered() async throws {
        try await withSink { sink in
            var configuration = try await sink.clientConfiguration()
            configuration.requireTLS = true
            let error = await #expect(throws: SMTPError.self) {
                try await client(configuration).send(to: "frank@example.com", subject: "x", textBody: "x")
            }
            guard case .startTLSUnavailable = error else {
                Issue.record("expected startTLSUnavailable, got \(String(describing: error))")
                return
            }
            #expect(try await sink.messages().isEmpty)
        }
    }

    // MARK: authentication

    static let credentials = SMTPSink.Credentials(username: "wrenn", password: "s3cret pass")

    @Test func authSucceedsOverStartTLS() async throws {
        try await withSink(.init(tls: .startTLS, credentials: Self.credentials, authRequired: true)) { sink in
            let configuration = try await sink.clientConfiguration(username: "wrenn", password: "s3cret pass")
            try await client(configuration).send(to: "grace@example.com", subject: "Authenticated", textBody: "hi\n")
            let mail = try #require(try await sink.waitForMessages(count: 1).first)
            #expect(mail.authenticatedAs == "wrenn")
            #expect(mail.tls)
        }
    }

    @Test func authWithWrongPasswordFailsWithServerText() async throws {
        try await withSink(.init(tls: .startTLS, credentials: Self.credentials, authRequired: true)) { sink in
            let configuration = try await sink.clientConfiguration(username: "wrenn", password: "wrong")
            let error = await #expect(throws: SMTPError.self) {
                try await client(configuration).send(to: "heidi@example.com", subject: "x", textBody: "x")
            }
            guard case .authenticationFailed(let code, let message) = error else {
                Issue.record("expected authenticationFailed, got \(String(describing: error))")
                return
            }
            #expect(code == 535)
            #expect(message.contains("Authentication credentials invalid"))
            #expect(error?.description.contains("535") == true)
            #expect(try await sink.messages().isEmpty)
        }
    }

    @Test func authOverPlaintextIsRefusedUnlessAllowed() async throws {
        try await withSink(.init(credentials: Self.credentials, authRequired: true, authAllowPlaintext: true)) { sink in
            var configuration = try await sink.clientConfiguration(username: "wrenn", password: "s3cret pass")
            let error = await #expect(throws: SMTPError.self) {
                try await client(configuration).send(to: "ivan@example.com", subject: "x", textBody: "x")
            }
            #expect(error == .insecureAuthenticationRefused)

            configuration.allowInsecureAuth = true
            try await client(configuration).send(to: "ivan@example.com", subject: "Plain auth", textBody: "hi\n")
            let mail = try #require(try await sink.waitForMessages(count: 1).first)
            #expect(mail.authenticatedAs == "wrenn")
            #expect(!mail.tls)
        }
    }

    @Test func serverRequiringAuthRejectsUnauthenticatedMailWithItsText() async throws {
        try await withSink(.init(tls: .startTLS, credentials: Self.credentials, authRequired: true)) { sink in
            let configuration = try await sink.clientConfiguration()
            let error = await #expect(throws: SMTPError.self) {
                try await client(configuration).send(to: "judy@example.com", subject: "x", textBody: "x")
            }
            guard case .unexpectedReply(let step, let code, let message) = error else {
                Issue.record("expected unexpectedReply, got \(String(describing: error))")
                return
            }
            #expect(step == "MAIL FROM")
            #expect(code == 530)
            #expect(!message.isEmpty)
        }
    }

    // MARK: validation and failures

    @Test(arguments: [
        ("subject", "alice@example.com", "Hello\r\nBcc: victim@example.com"),
        ("subject", "alice@example.com", "Hello\nBcc: victim@example.com"),
        ("to address", "alice@example.com\r\nRCPT TO:<victim@example.com>", "Hello"),
        ("to address", "alice@example.com\n", "Hello"),
    ])
    func headerInjectionIsRejectedBeforeConnecting(field: String, recipient: String, subject: String) async throws {
        // Port 1 on loopback: if the client tried to connect, the error would be connectionFailed.
        let configuration = SMTPConfiguration(host: "127.0.0.1", port: 1, fromAddress: "noreply@wrenn.test", timeout: .seconds(2))
        let error = await #expect(throws: SMTPError.self) {
            try await client(configuration).send(to: recipient, subject: subject, textBody: "x")
        }
        #expect(error == .headerInjection(field: field))
        #expect(error?.description.contains("header injection") == true)
    }

    @Test func injectionInFromAddressOrNameIsRejected() async throws {
        var configuration = SMTPConfiguration(host: "127.0.0.1", port: 1, fromAddress: "noreply@wrenn.test\r\nX: y")
        await #expect(throws: SMTPError.headerInjection(field: "from address")) {
            try await client(configuration).send(to: "a@example.com", subject: "x", textBody: "x")
        }
        configuration.fromAddress = "noreply@wrenn.test"
        configuration.fromName = "Wrenn\r\nBcc: victim@example.com"
        await #expect(throws: SMTPError.headerInjection(field: "from name")) {
            try await client(configuration).send(to: "a@example.com", subject: "x", textBody: "x")
        }
    }

    @Test(arguments: ["", "no-at-sign", "a b@example.com", "<a@example.com>", "a@example.com,b@example.com", "@example.com", "a@", "jürgen@example.com"])
    func invalidRecipientIsRejected(recipient: String) async throws {
        let configuration = SMTPConfiguration(host: "127.0.0.1", port: 1, fromAddress: "noreply@wrenn.test")
        let error = await #expect(throws: SMTPError.self) {
            try await client(configuration).send(to: recipient, subject: "x", textBody: "x")
        }
        guard case .invalidAddress(let field, _, _) = error else {
            Issue.record("expected invalidAddress, got \(String(describing: error))")
            return
        }
        #expect(field == "to")
    }

    @Test func connectionRefusedFailsQuickly() async throws {
        // A port that was just in use and is now closed.
        let sink = SMTPSink()
        try await sink.start()
        let configuration = try await sink.clientConfiguration(timeout: .seconds(20))
        await sink.stop()

        let started = ContinuousClock.now
        let error = await #expect(throws: SMTPError.self) {
            try await client(configuration).send(to: "a@example.com", subject: "x", textBody: "x")
        }
        #expect(ContinuousClock.now - started < .seconds(5))
        guard case .connectionFailed(let host, let port, let reason) = error else {
            Issue.record("expected connectionFailed, got \(String(describing: error))")
            return
        }
        #expect(host == "127.0.0.1")
        #expect(port == configuration.port)
        #expect(!reason.isEmpty)
    }

    @Test func silentServerTimesOut() async throws {
        try await withSink(.init(silent: true)) { sink in
            let configuration = try await sink.clientConfiguration(timeout: .milliseconds(500))
            let started = ContinuousClock.now
            let error = await #expect(throws: SMTPError.self) {
                try await client(configuration).send(to: "a@example.com", subject: "x", textBody: "x")
            }
            #expect(ContinuousClock.now - started < .seconds(5))
            #expect(error == .timeout(step: "greeting"))
        }
    }

    @Test func greetingRejectionCarriesServerText() async throws {
        try await withSink(.init(misbehavior: .rejectGreeting)) { sink in
            let configuration = try await sink.clientConfiguration()
            let error = await #expect(throws: SMTPError.self) {
                try await client(configuration).send(to: "a@example.com", subject: "x", textBody: "x")
            }
            #expect(error == .unexpectedReply(step: "connection (greeting)", code: 554, message: "5.3.2 sink.test no service for you"))
            #expect(error?.description == "SMTP server rejected connection (greeting): 554 5.3.2 sink.test no service for you")
        }
    }

    @Test func serverClosingAfterEHLOReportsItsReply() async throws {
        try await withSink(.init(misbehavior: .closeAfterEHLO)) { sink in
            let configuration = try await sink.clientConfiguration()
            let error = await #expect(throws: SMTPError.self) {
                try await client(configuration).send(to: "a@example.com", subject: "x", textBody: "x")
            }
            #expect(error == .unexpectedReply(step: "EHLO", code: 421, message: "4.3.2 sink.test shutting down"))
        }
    }

    @Test func fallsBackToHELOWhenEHLOIsNotSupported() async throws {
        try await withSink(.init(misbehavior: .heloOnly)) { sink in
            let configuration = try await sink.clientConfiguration()
            try await client(configuration).send(to: "a@example.com", subject: "old server", textBody: "x\n")
        }
    }

    @Test func dataPipelinedAfterStartTLSReplyIsRefused() async throws {
        try await withSink(.init(misbehavior: .startTLSInject)) { sink in
            var configuration = try await sink.clientConfiguration()
            configuration.tlsTrust = .insecureNoVerification
            let error = await #expect(throws: SMTPError.self) {
                try await client(configuration).send(to: "a@example.com", subject: "x", textBody: "x")
            }
            guard case .protocolViolation(let reason) = error else {
                Issue.record("expected protocolViolation, got \(String(describing: error))")
                return
            }
            #expect(reason.contains("STARTTLS"))
        }
    }

    @Test func cancellationStopsAHangingSend() async throws {
        try await withSink(.init(silent: true)) { sink in
            let configuration = try await sink.clientConfiguration(timeout: .seconds(60))
            let smtp = client(configuration)
            let task = Task { try await smtp.send(to: "a@example.com", subject: "x", textBody: "x") }
            try await Task.sleep(for: .milliseconds(300))
            let started = ContinuousClock.now
            task.cancel()
            await #expect(throws: CancellationError.self) { try await task.value }
            #expect(ContinuousClock.now - started < .seconds(5))
        }
    }

    @Test func sinkCollectsSeveralMessagesInOrder() async throws {
        try await withSink { sink in
            let smtp = client(try await sink.clientConfiguration())
            for index in 1...3 {
                try await smtp.send(to: "user\(index)@example.com", subject: "Mail \(index)", textBody: "n=\(index)\n")
            }
            let mails = try await sink.waitForMessages(count: 3)
            #expect(mails.map(\.subject) == ["Mail 1", "Mail 2", "Mail 3"])
            #expect(mails.map(\.to) == ["user1@example.com", "user2@example.com", "user3@example.com"])
        }
    }

    // MARK: unit: reply parser

    private func parse(_ text: String) throws -> [SMTPReply] {
        var parser = SMTPReplyParser()
        parser.append(bytes: Array(text.utf8))
        var replies: [SMTPReply] = []
        while let reply = try parser.next() { replies.append(reply) }
        return replies
    }

    @Test func parsesMultiLineReplies() throws {
        let replies = try parse("220 sink.test ESMTP\r\n250-sink.test\r\n250-SIZE 1000\r\n250-AUTH PLAIN LOGIN\r\n250 HELP\r\n354\r\n")
        #expect(replies == [
            SMTPReply(code: 220, lines: ["sink.test ESMTP"]),
            SMTPReply(code: 250, lines: ["sink.test", "SIZE 1000", "AUTH PLAIN LOGIN", "HELP"]),
            SMTPReply(code: 354, lines: [""]),
        ])
    }

    @Test func parserWaitsForCompleteReplyAcrossChunks() throws {
        var parser = SMTPReplyParser()
        parser.append(bytes: Array("250-one\r\n250 tw".utf8))
        #expect(try parser.next() == nil)
        #expect(parser.hasBufferedInput)
        parser.append(bytes: Array("o\n".utf8))
        #expect(try parser.next() == SMTPReply(code: 250, lines: ["one", "two"]))
        #expect(!parser.hasBufferedInput)
    }

    @Test(arguments: ["hello\r\n", "25\r\n", "250x\r\n", "250-a\r\n550 b\r\n", "650 nope\r\n"])
    func parserRejectsMalformedReplies(text: String) {
        #expect(throws: SMTPError.self) { _ = try parse(text) }
    }

    @Test func parserRejectsOverlongLines() {
        #expect(throws: SMTPError.self) { _ = try parse("250 " + String(repeating: "x", count: 5000)) }
    }

    @Test func ehloExtensionsAreParsed() {
        let reply = SMTPReply(code: 250, lines: ["mx.example", "PIPELINING", "SIZE 35882577", "STARTTLS", "AUTH PLAIN login", "AUTH=CRAM-MD5", "8BITMIME"])
        let extensions = SMTPExtensions(ehloReply: reply)
        #expect(extensions.supports("starttls"))
        #expect(extensions.supports("8BITMIME"))
        #expect(!extensions.supports("SMTPUTF8"))
        #expect(extensions.authMechanisms == ["PLAIN", "LOGIN", "CRAM-MD5"])
        #expect(extensions.sizeLimit == 35882577)
        #expect(!SMTPExtensions(ehloReply: nil).supports("STARTTLS"))
    }

    // MARK: unit: formatter

    @Test func dotStuffingAndTerminator() {
        let stuffed = SMTPMessageFormatter.dotStuffAndTerminate(Array("a\r\n.b\r\n..c\r\n.\r\nd".utf8))
        #expect(String(decoding: stuffed, as: UTF8.self) == "a\r\n..b\r\n...c\r\n..\r\nd\r\n.\r\n")
        let leading = SMTPMessageFormatter.dotStuffAndTerminate(Array(".x\r\n".utf8))
        #expect(String(decoding: leading, as: UTF8.self) == "..x\r\n.\r\n")
    }

    @Test func bodyLineEndingsAreNormalisedToCRLF() {
        let (text, encoding) = SMTPMessageFormatter.encodeBody("a\nb\r\nc\rd")
        #expect(text == "a\r\nb\r\nc\r\nd\r\n")
        #expect(encoding == "7bit")
    }

    @Test func quotedPrintableKeepsLinesShort() {
        let line = String(repeating: "é", count: 100) + " = end "
        let encoded = SMTPMessageFormatter.quotedPrintable(line: line)
        for physical in encoded.components(separatedBy: "\r\n") {
            #expect(physical.count <= 76)
        }
        #expect(encoded.hasSuffix("=20"))
        #expect(encoded.contains("=3D"))
        #expect(encoded.hasPrefix("=C3=A9"))
    }

    @Test func encodedWordsStayWithinRFC2047Limits() {
        let subject = String(repeating: "👩‍👩‍👧‍👦 Grüße ", count: 10)
        let words = SMTPMessageFormatter.encodedWords(subject)
        #expect(words.count > 1)
        var decoded = Data()
        for word in words {
            #expect(word.count <= SMTPMessageFormatter.maxEncodedWordLength)
            #expect(word.hasPrefix("=?UTF-8?B?") && word.hasSuffix("?="))
            let payload = String(word.dropFirst(10).dropLast(2))
            let bytes = Data(base64Encoded: payload)
            #expect(bytes != nil)
            // Each word decodes on its own to valid UTF-8 (no character split across words).
            #expect(bytes.flatMap { String(data: $0, encoding: .utf8) } != nil)
            decoded.append(bytes ?? Data())
        }
        #expect(String(data: decoded, encoding: .utf8) == subject)
        #expect(SMTPMessageFormatter.encodeSubject("Plain subject") == "Plain subject")
        #expect(SMTPMessageFormatter.encodeSubject("looks =?like?= a word").hasPrefix("=?UTF-8?B?"))
    }

    @Test func rfc5322DateFormat() {
        let date = Date(timeIntervalSince1970: 1_795_946_283)  // 2026-11-29 09:58:03 UTC, a Sunday
        #expect(SMTPMessageFormatter.rfc5322Date(date) == "Sun, 29 Nov 2026 09:58:03 +0000")
        let early = Date(timeIntervalSince1970: 0)
        #expect(SMTPMessageFormatter.rfc5322Date(early) == "Thu, 01 Jan 1970 00:00:00 +0000")
    }

    @Test func configurationValidation() {
        #expect(throws: SMTPError.self) {
            try SMTPConfiguration(host: "", fromAddress: "a@b.c").validate()
        }
        #expect(throws: SMTPError.self) {
            try SMTPConfiguration(host: "h", port: 0, fromAddress: "a@b.c").validate()
        }
        #expect(throws: SMTPError.self) {
            try SMTPConfiguration(host: "h", fromAddress: "a@b.c", heloName: "bad name").validate()
        }
        #expect(throws: SMTPError.self) {
            try SMTPConfiguration(host: "h", password: "p", fromAddress: "a@b.c").validate()
        }
        #expect(throws: Never.self) {
            try SMTPConfiguration(host: "smtp.example.com", username: "u", password: "p", fromAddress: "a@b.c").validate()
        }
    }
}
