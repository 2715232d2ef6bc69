import Foundation
@testable import WrennServer

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One message as the sink received it, parsed by Python's `email` package (so RFC 2047 subjects
/// and quoted-printable bodies come back decoded).
struct ReceivedMail: Sendable, Decodable, Equatable {
    /// Envelope sender (MAIL FROM).
    var mailFrom: String
    /// Envelope recipients (RCPT TO).
    var rcptTo: [String]
    /// `From:` header, decoded.
    var from: String
    /// `To:` header, decoded.
    var to: String
    /// `Subject:` header, decoded.
    var subject: String
    /// Decoded text body with `\n` line endings.
    var body: String
    /// Decoded headers, lower-cased names (first occurrence of each).
    var headers: [String: String]
    /// The message exactly as received (after SMTP dot-unstuffing), CRLF line endings.
    var raw: String
    /// Whether the session was encrypted (STARTTLS or implicit TLS).
    var tls: Bool
    /// The AUTH login the session authenticated as, if any.
    var authenticatedAs: String?
}

enum SMTPSinkError: Error, CustomStringConvertible {
    case notStarted
    case startFailed(String)
    case timedOut(String)

    var description: String {
        switch self {
        case .notStarted: return "SMTPSink: start() has not been called"
        case .startFailed(let reason): return "SMTPSink failed to start: \(reason)"
        case .timedOut(let reason): return "SMTPSink: \(reason)"
        }
    }
}

/// A real SMTP server (Python `aiosmtpd`, `pip install aiosmtpd`) on 127.0.0.1 with a free port,
/// run as a subprocess. Every received message is stored in a unique temp directory and can be read
/// back with `messages()` / `waitForMessages(count:)`.
///
/// ```swift
/// let sink = SMTPSink()                        // or SMTPSink(options: .init(tls: .startTLS))
/// try await sink.start()
/// defer { Task { await sink.stop() } }        // or call `await sink.stop()` at the end
/// let client = SMTPClient(configuration: try await sink.clientConfiguration(), logger: logger)
/// try await client.send(to: "a@example.com", subject: "Hi", textBody: "Hello")
/// let mails = try await sink.waitForMessages(count: 1)
/// ```
actor SMTPSink {
    struct Credentials: Sendable, Equatable {
        var username: String
        var password: String
    }

    struct Options: Sendable {
        enum TLS: Sendable, Equatable {
            /// Plain SMTP, no STARTTLS offered.
            case none
            /// STARTTLS offered, with a self-signed certificate for `localhost` / `127.0.0.1`.
            case startTLS
            /// TLS from the first byte (SMTPS) with the same kind of certificate.
            case implicit
        }

        var tls: TLS = .none
        /// With `.startTLS`: refuse MAIL/RCPT/DATA/AUTH until STARTTLS was done.
        var requireStartTLS = false
        /// Offer AUTH PLAIN/LOGIN and accept exactly these credentials.
        var credentials: Credentials? = nil
        /// Refuse mail from sessions that did not authenticate.
        var authRequired = false
        /// Offer AUTH on unencrypted connections too (aiosmtpd refuses it by default).
        var authAllowPlaintext = false
        /// Accept TCP connections but never send anything (for client timeout tests).
        var silent = false
        /// Run a scripted broken server instead of aiosmtpd (for protocol-error tests).
        var misbehavior: Misbehavior? = nil
        /// subjectAltName of the self-signed certificate (TLS modes).
        var certificateSubjectAltNames = "DNS:localhost,IP:127.0.0.1"

        enum Misbehavior: String, Sendable {
            /// Greets with `554 5.3.2 …` instead of 220.
            case rejectGreeting = "reject-greeting"
            /// Offers STARTTLS and pipelines a plaintext reply behind its `220` (command injection).
            case startTLSInject = "starttls-inject"
            /// Answers EHLO with `421 4.3.2 …` and closes the connection.
            case closeAfterEHLO = "close-after-ehlo"
            /// Answers EHLO with 502; accepts HELO and one message (which it discards).
            case heloOnly = "helo-only"
        }

        init(
            tls: TLS = .none,
            requireStartTLS: Bool = false,
            credentials: Credentials? = nil,
            authRequired: Bool = false,
            authAllowPlaintext: Bool = false,
            silent: Bool = false,
            misbehavior: Misbehavior? = nil,
            certificateSubjectAltNames: String = "DNS:localhost,IP:127.0.0.1"
        ) {
            self.tls = tls
            self.requireStartTLS = requireStartTLS
            self.credentials = credentials
            self.authRequired = authRequired
            self.authAllowPlaintext = authAllowPlaintext
            self.silent = silent
            self.misbehavior = misbehavior
            self.certificateSubjectAltNames = certificateSubjectAltNames
        }
    }

    let options: Options
    /// Unique temp directory: the script, the certificate, `mails/`, `stderr.log`.
    let directory: URL
    private var mailDirectory: URL { directory.appendingPathComponent("mails", isDirectory: true) }
    private var process: Process?
    /// Kept open for the life of the sink; the Python side exits when it reaches EOF, so the
    /// server dies with the test process even if `stop()` is never called.
    private var stdinPipe: Pipe?
    private var _port: Int?
    /// PEM of the self-signed server certificate (TLS modes only), usable as the client's trust root.
    private(set) var certificatePEM: String?

    init(options: Options = Options()) {
        self.options = options
        self.directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("wrenn-smtp-sink-\(UUID().uuidString.lowercased())", isDirectory: true)
    }

    /// The port the sink listens on (127.0.0.1). Only valid after `start()`.
    var port: Int {
        get throws {
            guard let _port else { throw SMTPSinkError.notStarted }
            return _port
        }
    }

    /// Starts the server and returns once it accepts connections.
    func start(timeout: Duration = .seconds(30)) async throws {
        guard process == nil else { return }
        let fileManager = FileManager.default
        try fileManager.createDirectory(at: mailDirectory, withIntermediateDirectories: true)
        let script = directory.appendingPathComponent("smtp_sink.py")
        try SMTPSinkScript.source.write(to: script, atomically: true, encoding: .utf8)

        var arguments = ["python3", "-u", script.path, "--dir", mailDirectory.path]
        if let misbehavior = options.misbehavior {
            arguments += ["--misbehave", misbehavior.rawValue]
        } else if options.silent {
            arguments.append("--silent")
        } else {
            switch options.tls {
            case .none:
                break
            case .startTLS, .implicit:
                let (certPath, keyPath) = try await makeCertificate()
                arguments += ["--tls", options.tls == .startTLS ? "starttls" : "implicit", "--cert", certPath, "--key", keyPath]
                if options.requireStartTLS { arguments.append("--require-starttls") }
            }
            if let credentials = options.credentials {
                arguments += ["--auth-user", credentials.username, "--auth-password", credentials.password]
                if options.authRequired { arguments.append("--auth-required") }
                if options.authAllowPlaintext { arguments.append("--auth-allow-plaintext") }
            }
        }

        let stderrURL = directory.appendingPathComponent("stderr.log")
        _ = fileManager.createFile(atPath: stderrURL.path, contents: nil)
        let stderrHandle = try FileHandle(forWritingTo: stderrURL)
        defer { try? stderrHandle.close() }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
        process.environment = environment
        let stdout = Pipe()
        let stdin = Pipe()
        process.standardOutput = stdout
        process.standardError = stderrHandle
        process.standardInput = stdin
        try process.run()
        self.process = process
        self.stdinPipe = stdin

        do {
            let port = try await Self.waitForReadyLine(
                stdout.fileHandleForReading,
                process: process,
                timeout: timeout
            )
            self._port = port
        } catch {
            let stderrText = (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? ""
            await stop()
            var reason = "\(error)"
            if !stderrText.isEmpty { reason += "; python stderr: \(stderrText.suffix(2000))" }
            if stderrText.contains("No module named 'aiosmtpd'") {
                reason += " (run `pip install aiosmtpd`)"
            }
            throw SMTPSinkError.startFailed(reason)
        }
    }

    /// Stops the server (SIGTERM, then SIGKILL after 5 s) and deletes the temp directory.
    func stop() async {
        if let process {
            if process.isRunning {
                process.terminate()
                let deadline = ContinuousClock.now + .seconds(5)
                while process.isRunning && ContinuousClock.now < deadline {
                    try? await Task.sleep(for: .milliseconds(20))
                }
                if process.isRunning {
                    kill(process.processIdentifier, SIGKILL)
                    while process.isRunning {
                        try? await Task.sleep(for: .milliseconds(20))
                    }
                }
            }
            self.process = nil
        }
        if let stdinPipe {
            try? stdinPipe.fileHandleForWriting.close()
            self.stdinPipe = nil
        }
        try? FileManager.default.removeItem(at: directory)
    }

    /// All messages received so far, oldest first.
    func messages() throws -> [ReceivedMail] {
        let files = try FileManager.default.contentsOfDirectory(atPath: mailDirectory.path)
            .filter { $0.hasSuffix(".json") }
            .sorted()
        let decoder = JSONDecoder()
        return try files.map { name in
            let data = try Data(contentsOf: mailDirectory.appendingPathComponent(name))
            return try decoder.decode(ReceivedMail.self, from: data)
        }
    }

    /// Waits until at least `count` messages have arrived and returns all of them.
    func waitForMessages(count: Int, timeout: Duration = .seconds(10)) async throws -> [ReceivedMail] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let received = try messages()
            if received.count >= count { return received }
            if ContinuousClock.now >= deadline {
                throw SMTPSinkError.timedOut("expected \(count) message(s), got \(received.count) within \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(25))
        }
    }

    /// A client configuration that talks to this sink: the right port and TLS mode, the sink's
    /// certificate as the only trust root, a short timeout.
    func clientConfiguration(
        fromAddress: String = "noreply@wrenn.test",
        username: String? = nil,
        password: String? = nil,
        timeout: Duration = .seconds(10)
    ) throws -> SMTPConfiguration {
        var configuration = SMTPConfiguration(
            host: "127.0.0.1",
            port: try port,
            username: username,
            password: password,
            fromAddress: fromAddress,
            implicitTLS: options.tls == .implicit,
            requireTLS: options.tls != .none,
            heloName: "client.wrenn.test",
            timeout: timeout
        )
        if let certificatePEM {
            configuration.tlsTrust = .onlyPEM(certificatePEM)
        }
        return configuration
    }

    // MARK: helpers

    /// Self-signed EC certificate (by default for `localhost` and `127.0.0.1`) via the `openssl` CLI.
    private func makeCertificate() async throws -> (cert: String, key: String) {
        let certPath = directory.appendingPathComponent("cert.pem").path
        let keyPath = directory.appendingPathComponent("key.pem").path
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        openssl.arguments = [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", keyPath, "-out", certPath, "-days", "2", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=\(options.certificateSubjectAltNames)",
        ]
        let output = Pipe()
        openssl.standardOutput = output
        openssl.standardError = output
        try openssl.run()
        let log = try await Self.readToEnd(output.fileHandleForReading)
        while openssl.isRunning {
            try await Task.sleep(for: .milliseconds(10))
        }
        guard openssl.terminationStatus == 0 else {
            throw SMTPSinkError.startFailed("openssl req failed (\(openssl.terminationStatus)): \(String(decoding: log, as: UTF8.self))")
        }
        certificatePEM = try String(contentsOfFile: certPath, encoding: .utf8)
        return (certPath, keyPath)
    }

    /// Reads stdout on a GCD thread (never blocking the cooperative pool) until `READY <port>`.
    /// On timeout the process is terminated, which ends the read with EOF.
    private static func waitForReadyLine(
        _ handle: FileHandle,
        process: Process,
        timeout: Duration
    ) async throws -> Int {
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        let timer = DispatchWorkItem { if process.isRunning { process.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + seconds, execute: timer)
        defer { timer.cancel() }
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Int, any Error>) in
            DispatchQueue.global().async {
                var buffer = Data()
                while true {
                    let chunk = handle.availableData
                    if chunk.isEmpty {
                        continuation.resume(
                            throwing: SMTPSinkError.startFailed(
                                "the server exited or did not get ready within \(timeout) (stdout: \(String(decoding: buffer, as: UTF8.self)))"
                            )
                        )
                        return
                    }
                    buffer.append(chunk)
                    // Only complete lines: a chunk may end in the middle of the port number.
                    guard let lastNewline = buffer.lastIndex(of: UInt8(ascii: "\n")) else { continue }
                    let text = String(decoding: buffer[..<lastNewline], as: UTF8.self)
                    for line in text.split(separator: "\n") where line.hasPrefix("READY ") {
                        if let port = Int(line.dropFirst("READY ".count).trimmingCharacters(in: .whitespaces)) {
                            continuation.resume(returning: port)
                            return
                        }
                    }
                }
            }
        }
    }

    private static func readToEnd(_ handle: FileHandle) async throws -> Data {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Data, any Error>) in
            DispatchQueue.global().async {
                do {
                    continuation.resume(returning: try handle.readToEnd() ?? Data())
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }
}
