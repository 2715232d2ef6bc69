/// Everything that can go wrong while handing a message to an SMTP server.
///
/// Every case that comes from a server reply carries the reply code and the server's own text,
/// so a log line or an API error says exactly what the relay objected to.
public enum SMTPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The configuration cannot work (empty host, bad port, a CR/LF in the HELO name, …).
    case invalidConfiguration(String)
    /// An address (envelope sender or recipient) is malformed or not supported.
    case invalidAddress(field: String, address: String, reason: String)
    /// A header value contains CR or LF: a header injection attempt, refused before connecting.
    case headerInjection(field: String)
    /// A header value contains other control characters that cannot be put in a header.
    case invalidHeaderValue(field: String, reason: String)
    /// The TCP connection could not be established (refused, unreachable, DNS failure, connect timeout).
    case connectionFailed(host: String, port: Int, reason: String)
    /// A step (greeting, a command's reply, the TLS handshake) took longer than the configured timeout.
    case timeout(step: String)
    /// The server closed the connection before answering.
    case connectionClosed(step: String)
    /// The server answered with a code other than the one the step needs.
    case unexpectedReply(step: String, code: Int, message: String)
    /// The server's reply could not be parsed as an SMTP reply.
    case malformedReply(String)
    /// The server broke the protocol in a way that may be an attack (e.g. data pipelined after the STARTTLS reply).
    case protocolViolation(String)
    /// TLS is required (`requireTLS`) but the server does not offer STARTTLS (or refused it).
    case startTLSUnavailable(reason: String)
    /// The TLS handshake or TLS setup failed (untrusted certificate, hostname mismatch, bad CA PEM, …).
    case tlsFailure(String)
    /// Credentials are configured but the server offers neither AUTH PLAIN nor AUTH LOGIN.
    case authenticationUnsupported(offered: [String])
    /// Credentials are configured but the connection is not encrypted and `allowInsecureAuth` is false.
    case insecureAuthenticationRefused
    /// The server rejected the credentials.
    case authenticationFailed(code: Int, message: String)
    /// The message is larger than the server's advertised SIZE limit.
    case messageTooLarge(size: Int, limit: Int)

    public var description: String {
        switch self {
        case .invalidConfiguration(let reason):
            return "SMTP configuration is invalid: \(reason)"
        case .invalidAddress(let field, let address, let reason):
            return "SMTP \(field) address \(Self.quoted(address)) is invalid: \(reason)"
        case .headerInjection(let field):
            return "SMTP \(field) contains a CR or LF character (header injection refused)"
        case .invalidHeaderValue(let field, let reason):
            return "SMTP \(field) cannot be used as a header value: \(reason)"
        case .connectionFailed(let host, let port, let reason):
            return "could not connect to SMTP server \(host):\(port): \(reason)"
        case .timeout(let step):
            return "SMTP server did not answer in time (\(step))"
        case .connectionClosed(let step):
            return "SMTP server closed the connection (\(step))"
        case .unexpectedReply(let step, let code, let message):
            return "SMTP server rejected \(step): \(code) \(message)"
        case .malformedReply(let reason):
            return "SMTP server sent a malformed reply: \(reason)"
        case .protocolViolation(let reason):
            return "SMTP protocol violation: \(reason)"
        case .startTLSUnavailable(let reason):
            return "TLS is required but STARTTLS is unavailable: \(reason)"
        case .tlsFailure(let reason):
            return "SMTP TLS failure: \(reason)"
        case .authenticationUnsupported(let offered):
            let list = offered.isEmpty ? "none" : offered.joined(separator: " ")
            return "SMTP credentials are configured but the server offers no supported AUTH mechanism (offered: \(list); supported: PLAIN LOGIN)"
        case .insecureAuthenticationRefused:
            return "refusing to send SMTP credentials over an unencrypted connection (enable TLS or set allowInsecureAuth)"
        case .authenticationFailed(let code, let message):
            return "SMTP authentication failed: \(code) \(message)"
        case .messageTooLarge(let size, let limit):
            return "message of \(size) bytes exceeds the SMTP server's SIZE limit of \(limit) bytes"
        }
    }

    /// Addresses in messages are escaped so a hostile value cannot forge log lines.
    private static func quoted(_ value: String) -> String {
        var out = "\""
        for scalar in value.unicodeScalars.prefix(320) {
            switch scalar {
            case "\r": out += "\\r"
            case "\n": out += "\\n"
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    out += "\\u{\(String(scalar.value, radix: 16))}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
