import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// Sends plain-text mails through an SMTP relay: one connection per message.
///
/// Conversation: greeting → EHLO (HELO fallback) → STARTTLS + EHLO when offered (or required) →
/// AUTH PLAIN/LOGIN when a username is configured → MAIL FROM → RCPT TO → DATA → QUIT.
/// Every reply code is checked and every step is bounded by `configuration.timeout`.
public struct SMTPClient: Sendable {
    public let configuration: SMTPConfiguration
    private let logger: Logger
    private let eventLoopGroup: any EventLoopGroup

    public init(
        configuration: SMTPConfiguration,
        logger: Logger,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "smtp.server"] = "\(configuration.host):\(configuration.port)"
        self.logger = logger
        self.eventLoopGroup = eventLoopGroup
    }

    /// Delivers one text/plain UTF-8 message to `recipient`. Returns once the server has accepted
    /// the message (250 after DATA); throws `SMTPError` otherwise. Validation errors (bad address,
    /// CR/LF in the subject) are thrown before any connection is made.
    public func send(to recipient: String, subject: String, textBody: String) async throws {
        let configuration = self.configuration
        try configuration.validate()
        try SMTPMessageFormatter.checkAddress(configuration.fromAddress, field: "from")
        try SMTPMessageFormatter.checkAddress(recipient, field: "to")
        try SMTPMessageFormatter.checkHeaderText(subject, field: "subject")

        let messageID = SMTPMessageFormatter.makeMessageID(fromAddress: configuration.fromAddress)
        let payload = SMTPMessageFormatter.render(
            .init(
                fromAddress: configuration.fromAddress,
                fromName: configuration.fromName,
                toAddress: recipient,
                subject: subject,
                textBody: textBody,
                date: Date(),
                messageID: messageID
            )
        )

        var logger = self.logger
        logger[metadataKey: "smtp.message_id"] = "\(messageID)"
        let tls = SMTPTLSProvider(configuration: configuration)
        let channel = try await connect(tls: tls, logger: logger)

        do {
            try await deliver(over: channel, tls: tls, recipient: recipient, payload: payload, logger: logger)
        } catch {
            // Cancellation closes the channel; report it as cancellation, not as a broken connection.
            if Task.isCancelled { throw CancellationError() }
            throw error
        }
        logger.info("mail accepted by SMTP server", metadata: ["smtp.to": "\(recipient)"])
    }

    private func deliver(
        over channel: NIOAsyncChannel<SMTPReply, ByteBuffer>,
        tls: SMTPTLSProvider,
        recipient: String,
        payload: [UInt8],
        logger: Logger
    ) async throws {
        let configuration = self.configuration
        try await withTaskCancellationHandler {
            try await channel.executeThenClose { inbound, outbound in
                let conversation = SMTPConversation(
                    channel: channel.channel,
                    inbound: inbound.makeAsyncIterator(),
                    outbound: outbound,
                    timeout: configuration.timeout,
                    logger: logger
                )
                try await conversation.deliver(
                    configuration: configuration,
                    tls: tls,
                    recipient: recipient,
                    payload: payload
                )
            }
        } onCancel: {
            channel.channel.close(promise: nil)
        }
    }

    private func connect(
        tls: SMTPTLSProvider,
        logger: Logger
    ) async throws -> NIOAsyncChannel<SMTPReply, ByteBuffer> {
        let configuration = self.configuration
        let implicitTLSContext = configuration.implicitTLS ? try tls.context() : nil
        let serverName = tls.serverName
        let bootstrap = ClientBootstrap(group: eventLoopGroup)
            .connectTimeout(TimeAmount(configuration.timeout))
            .channelOption(.socketOption(.so_keepalive), value: 1)
        logger.debug("connecting to SMTP server", metadata: ["smtp.implicit_tls": "\(configuration.implicitTLS)"])
        do {
            return try await bootstrap.connect(host: configuration.host, port: configuration.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let implicitTLSContext {
                        let handler = try NIOSSLClientHandler(context: implicitTLSContext, serverHostname: serverName)
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                    try channel.pipeline.syncOperations.addHandler(SMTPReplyDecoderHandler())
                    return try NIOAsyncChannel<SMTPReply, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        } catch let error as SMTPError {
            throw error
        } catch {
            throw SMTPError.connectionFailed(
                host: configuration.host,
                port: configuration.port,
                reason: SMTPConversation.describe(error)
            )
        }
    }
}

/// Builds the NIOSSL context on first use (loading trust roots is not free) and knows the name the
/// certificate is checked against.
struct SMTPTLSProvider: Sendable {
    let configuration: SMTPConfiguration

    /// SNI / verification name: `tlsServerName`, else `host`; `nil` for IP addresses (NIOSSL then
    /// verifies the certificate's IP SANs against the peer address).
    var serverName: String? {
        let name = configuration.tlsServerName ?? configuration.host
        if (try? SocketAddress(ipAddress: name, port: 0)) != nil { return nil }
        let trimmed = name.hasPrefix("[") && name.hasSuffix("]") ? String(name.dropFirst().dropLast()) : name
        if (try? SocketAddress(ipAddress: trimmed, port: 0)) != nil { return nil }
        return name
    }

    func context() throws(SMTPError) -> NIOSSLContext {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        do {
            switch configuration.tlsTrust {
            case .system:
                break
            case .systemPlusPEM(let pem):
                tls.additionalTrustRoots = [.certificates(try Self.certificates(pem))]
            case .systemPlusPEMFile(let path):
                tls.additionalTrustRoots = [.certificates(try NIOSSLCertificate.fromPEMFile(path))]
            case .onlyPEM(let pem):
                tls.trustRoots = .certificates(try Self.certificates(pem))
            case .insecureNoVerification:
                tls.certificateVerification = .none
            }
            return try NIOSSLContext(configuration: tls)
        } catch let error as SMTPError {
            throw error
        } catch {
            throw .tlsFailure("cannot set up TLS: \(SMTPConversation.describe(error))")
        }
    }

    private static func certificates(_ pem: String) throws -> [NIOSSLCertificate] {
        let certificates = try NIOSSLCertificate.fromPEMBytes(Array(pem.utf8))
        if certificates.isEmpty {
            throw SMTPError.tlsFailure("the configured CA PEM contains no certificate")
        }
        return certificates
    }
}

/// Set by the per-step timer when it fires, so the resulting channel close is reported as a timeout.
private final class TimeoutFlag: Sendable {
    private let fired = Atomic<Bool>(false)
    func fire() { fired.store(true, ordering: .sequentiallyConsistent) }
    var hasFired: Bool { fired.load(ordering: .sequentiallyConsistent) }
}

/// The state of one SMTP session; lives inside `executeThenClose` and never leaves that task.
private final class SMTPConversation {
    private let channel: any Channel
    private var inbound: NIOAsyncChannelInboundStream<SMTPReply>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private let timeout: Duration
    private let logger: Logger
    private var repliesConsumed = 0
    private var isEncrypted = false

    init(
        channel: any Channel,
        inbound: NIOAsyncChannelInboundStream<SMTPReply>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
        timeout: Duration,
        logger: Logger
    ) {
        self.channel = channel
        self.inbound = inbound
        self.outbound = outbound
        self.timeout = timeout
        self.logger = logger
    }

    func deliver(
        configuration: SMTPConfiguration,
        tls: SMTPTLSProvider,
        recipient: String,
        payload: [UInt8]
    ) async throws {
        isEncrypted = configuration.implicitTLS
        let step = configuration.implicitTLS ? "TLS handshake and greeting" : "greeting"
        let greeting = try await withStepTimeout(step) { try await self.readReply(step: step) }
        try Self.expect(greeting, [220], step: "connection (greeting)")

        var extensions = try await hello(configuration.heloName)

        if !configuration.implicitTLS {
            if extensions.supports("STARTTLS") {
                let reply = try await command("STARTTLS", step: "STARTTLS")
                if reply.code == 220 {
                    try await startTLS(tls)
                    extensions = try await hello(configuration.heloName)
                } else if configuration.requireTLS {
                    throw SMTPError.startTLSUnavailable(reason: "server answered STARTTLS with \(reply.code) \(reply.text)")
                } else {
                    logger.warning(
                        "SMTP server refused STARTTLS; continuing unencrypted",
                        metadata: ["smtp.reply": "\(reply.code) \(reply.text)"]
                    )
                }
            } else if configuration.requireTLS {
                throw SMTPError.startTLSUnavailable(reason: "server does not offer STARTTLS")
            } else {
                logger.notice("SMTP server does not offer STARTTLS; sending unencrypted")
            }
        }

        if let username = configuration.username {
            try await authenticate(
                username: username,
                password: configuration.password ?? "",
                extensions: extensions,
                allowInsecure: configuration.allowInsecureAuth
            )
        }

        if let limit = extensions.sizeLimit, limit > 0, payload.count > limit {
            throw SMTPError.messageTooLarge(size: payload.count, limit: limit)
        }

        try Self.expect(
            try await command("MAIL FROM:<\(configuration.fromAddress)>", step: "MAIL FROM"),
            [250],
            step: "MAIL FROM"
        )
        try Self.expect(try await command("RCPT TO:<\(recipient)>", step: "RCPT TO"), [250, 251], step: "RCPT TO")
        try Self.expect(try await command("DATA", step: "DATA"), [354], step: "DATA")

        let accepted = try await withStepTimeout("message data") {
            try await self.write(ByteBuffer(bytes: payload), step: "message data")
            return try await self.readReply(step: "message data")
        }
        try Self.expect(accepted, [250], step: "message data")
        logger.debug("SMTP server accepted message", metadata: ["smtp.reply": "\(accepted.code) \(accepted.text)"])

        // The message is accepted; a failing QUIT must not turn that into an error.
        do {
            let bye = try await command("QUIT", step: "QUIT")
            if bye.code != 221 {
                logger.debug("unexpected reply to QUIT", metadata: ["smtp.reply": "\(bye.code) \(bye.text)"])
            }
        } catch {
            logger.debug("QUIT failed after delivery", metadata: ["error": "\(error)"])
        }
    }

    // MARK: steps

    private func hello(_ name: String) async throws -> SMTPExtensions {
        let ehlo = try await command("EHLO \(name)", step: "EHLO")
        if ehlo.code == 250 {
            return SMTPExtensions(ehloReply: ehlo)
        }
        // RFC 5321 §3.2: fall back to HELO when EHLO is not understood.
        guard [500, 501, 502, 504, 550].contains(ehlo.code) else {
            throw SMTPError.unexpectedReply(step: "EHLO", code: ehlo.code, message: ehlo.text)
        }
        let helo = try await command("HELO \(name)", step: "HELO")
        try Self.expect(helo, [250], step: "HELO")
        return SMTPExtensions(ehloReply: nil)
    }

    private func startTLS(_ tls: SMTPTLSProvider) async throws {
        let context = try tls.context()
        let serverName = tls.serverName
        let consumed = repliesConsumed
        let channel = self.channel
        // Installed on the event loop, where no read can interleave with the check below.
        let installed: EventLoopFuture<Void> = channel.eventLoop.submit {
            let decoder = try channel.pipeline.syncOperations.handler(type: SMTPReplyDecoderHandler.self)
            if decoder.repliesEmitted != consumed || decoder.hasBufferedInput {
                throw SMTPError.protocolViolation(
                    "server sent data after its STARTTLS reply before the TLS handshake (possible STARTTLS injection)"
                )
            }
            let handler = try NIOSSLClientHandler(context: context, serverHostname: serverName)
            try channel.pipeline.syncOperations.addHandler(handler, position: .first)
        }
        do {
            try await installed.get()
        } catch let error as SMTPError {
            throw error
        } catch {
            throw SMTPError.tlsFailure("cannot start TLS: \(Self.describe(error))")
        }
        isEncrypted = true
        logger.debug("STARTTLS: TLS handler installed")
    }

    private func authenticate(
        username: String,
        password: String,
        extensions: SMTPExtensions,
        allowInsecure: Bool
    ) async throws {
        guard isEncrypted || allowInsecure else {
            throw SMTPError.insecureAuthenticationRefused
        }
        let mechanisms = extensions.authMechanisms
        if mechanisms.contains("PLAIN") {
            let token = Data(([0] + Array(username.utf8) + [0] + Array(password.utf8))).base64EncodedString()
            let reply = try await command("AUTH PLAIN \(token)", step: "AUTH PLAIN", logAs: "AUTH PLAIN <redacted>")
            try Self.expectAuth(reply)
        } else if mechanisms.contains("LOGIN") {
            let start = try await command("AUTH LOGIN", step: "AUTH LOGIN")
            try Self.expectAuthContinue(start)
            let user = try await command(
                Data(username.utf8).base64EncodedString(),
                step: "AUTH LOGIN username",
                logAs: "<username redacted>"
            )
            try Self.expectAuthContinue(user)
            let pass = try await command(
                Data(password.utf8).base64EncodedString(),
                step: "AUTH LOGIN password",
                logAs: "<password redacted>"
            )
            try Self.expectAuth(pass)
        } else {
            throw SMTPError.authenticationUnsupported(offered: mechanisms)
        }
        logger.debug("SMTP authentication succeeded")
    }

    // MARK: protocol primitives

    /// Writes one command line and reads its reply, all within one step timeout.
    private func command(_ line: String, step: String, logAs: String? = nil) async throws -> SMTPReply {
        logger.trace("SMTP >>> \(logAs ?? line)")
        return try await withStepTimeout(step) {
            try await self.write(ByteBuffer(string: line + "\r\n"), step: step)
            return try await self.readReply(step: step)
        }
    }

    /// Writes to the server. When the write fails because the connection is gone, what the server
    /// sent before closing (e.g. `421 too busy`) or the error that closed it (e.g. a failed TLS
    /// handshake) explains the failure better than "I/O on closed channel", so that is reported.
    private func write(_ buffer: ByteBuffer, step: String) async throws {
        do {
            try await outbound.write(buffer)
        } catch {
            let reply = try await readReply(step: step)
            throw SMTPError.unexpectedReply(step: step, code: reply.code, message: reply.text)
        }
    }

    private func readReply(step: String) async throws -> SMTPReply {
        let next: SMTPReply?
        do {
            next = try await inbound.next()
        } catch let error as SMTPError {
            throw error
        } catch let error as NIOSSLError {
            throw SMTPError.tlsFailure("\(step): \(Self.describe(error))")
        } catch let error as BoringSSLError {
            throw SMTPError.tlsFailure("\(step): \(Self.describe(error))")
        } catch let error as NIOSSLExtraError {
            throw SMTPError.tlsFailure("\(step): \(Self.describe(error))")
        } catch {
            throw SMTPError.connectionClosed(step: "\(step): \(Self.describe(error))")
        }
        guard let reply = next else {
            throw SMTPError.connectionClosed(step: step)
        }
        repliesConsumed += 1
        logger.trace("SMTP <<< \(reply.code) \(reply.text)")
        return reply
    }

    /// Runs `body`; if it has not finished after `timeout`, closes the channel (which ends any
    /// pending read or write) and reports `SMTPError.timeout`.
    private func withStepTimeout<T>(_ step: String, _ body: () async throws -> T) async throws -> T {
        let flag = TimeoutFlag()
        let channel = self.channel
        let timer = channel.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
            flag.fire()
            channel.close(promise: nil)
        }
        defer { timer.cancel() }
        do {
            let result = try await body()
            if flag.hasFired { throw SMTPError.timeout(step: step) }
            return result
        } catch {
            if flag.hasFired { throw SMTPError.timeout(step: step) }
            if let smtpError = error as? SMTPError { throw smtpError }
            throw SMTPError.connectionClosed(step: "\(step): \(Self.describe(error))")
        }
    }

    private static func expect(_ reply: SMTPReply, _ codes: Set<Int>, step: String) throws {
        guard codes.contains(reply.code) else {
            throw SMTPError.unexpectedReply(step: step, code: reply.code, message: reply.text)
        }
    }

    private static func expectAuth(_ reply: SMTPReply) throws {
        guard reply.code == 235 else {
            throw SMTPError.authenticationFailed(code: reply.code, message: reply.text)
        }
    }

    private static func expectAuthContinue(_ reply: SMTPReply) throws {
        guard reply.code == 334 else {
            throw SMTPError.authenticationFailed(code: reply.code, message: reply.text)
        }
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? SMTPError { return error.description }
        return String(describing: error)
    }
}

/// Capabilities from the EHLO reply (RFC 5321 §4.1.1.1): one keyword and its parameters per line
/// after the first.
struct SMTPExtensions: Sendable, Equatable {
    private var keywords: [String: [String]] = [:]

    init(ehloReply: SMTPReply?) {
        guard let ehloReply else { return }
        for line in ehloReply.lines.dropFirst() {
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let first = parts.first else { continue }
            // Old servers announce "AUTH=PLAIN LOGIN".
            if first.uppercased().hasPrefix("AUTH=") {
                let mechanism = String(first.dropFirst(5))
                let params = ([mechanism] + parts.dropFirst()).map { $0.uppercased() }
                keywords["AUTH", default: []].append(contentsOf: params)
                continue
            }
            let keyword = first.uppercased()
            let params = Array(parts.dropFirst())
            if keyword == "AUTH" {
                keywords["AUTH", default: []].append(contentsOf: params.map { $0.uppercased() })
            } else {
                keywords[keyword] = params
            }
        }
    }

    func supports(_ keyword: String) -> Bool { keywords[keyword.uppercased()] != nil }

    var authMechanisms: [String] {
        var seen: [String] = []
        for mechanism in keywords["AUTH"] ?? [] where !seen.contains(mechanism) {
            seen.append(mechanism)
        }
        return seen
    }

    var sizeLimit: Int? { keywords["SIZE"]?.first.flatMap { Int($0) } }
}
