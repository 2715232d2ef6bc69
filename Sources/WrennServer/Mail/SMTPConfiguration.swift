/// How to reach and talk to the outgoing mail relay.
public struct SMTPConfiguration: Sendable, Equatable {
    /// Which certificates the client trusts when it speaks TLS (STARTTLS or implicit TLS).
    public enum TLSTrust: Sendable, Equatable {
        /// The system's trust store, full certificate and hostname verification. The production setting.
        case system
        /// The system's trust store plus the CA certificate(s) in this PEM text (e.g. a private CA, a test CA).
        case systemPlusPEM(String)
        /// The system's trust store plus the CA certificate(s) in this PEM file.
        case systemPlusPEMFile(String)
        /// Only the CA certificate(s) in this PEM text; hostname still verified.
        case onlyPEM(String)
        /// No certificate verification at all. Encrypts, but does not authenticate the server: tests and
        /// local development only. Must be chosen explicitly.
        case insecureNoVerification
    }

    /// Relay host name or IP address.
    public var host: String
    /// Relay port: 587 (submission, STARTTLS), 465 (implicit TLS) or 25.
    public var port: Int
    /// User name for AUTH PLAIN/LOGIN; `nil` means do not authenticate.
    public var username: String?
    /// Password for AUTH PLAIN/LOGIN.
    public var password: String?
    /// Envelope sender and `From:` address, e.g. `noreply@wrenn.example`.
    public var fromAddress: String
    /// Optional display name in the `From:` header (RFC 2047-encoded when not ASCII).
    public var fromName: String?
    /// Speak TLS from the first byte (SMTPS, port 465) instead of upgrading with STARTTLS.
    public var implicitTLS: Bool
    /// Fail if the connection cannot be encrypted (server does not offer STARTTLS or refuses it).
    /// When `false`, STARTTLS is still used whenever the server offers it.
    public var requireTLS: Bool
    /// Allow sending credentials over an unencrypted connection. Off by default.
    public var allowInsecureAuth: Bool
    /// Name sent with EHLO/HELO (should be this machine's FQDN).
    public var heloName: String
    /// Limit for connecting and for each protocol step (each command/reply, the TLS handshake).
    public var timeout: Duration
    /// Certificates trusted for TLS.
    public var tlsTrust: TLSTrust
    /// Name the server certificate is verified against (and sent as SNI). Defaults to `host`; an IP
    /// address is verified against the certificate's IP SANs.
    public var tlsServerName: String?

    public init(
        host: String,
        port: Int = 587,
        username: String? = nil,
        password: String? = nil,
        fromAddress: String,
        fromName: String? = nil,
        implicitTLS: Bool = false,
        requireTLS: Bool = false,
        allowInsecureAuth: Bool = false,
        heloName: String = "localhost",
        timeout: Duration = .seconds(30),
        tlsTrust: TLSTrust = .system,
        tlsServerName: String? = nil
    ) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.fromAddress = fromAddress
        self.fromName = fromName
        self.implicitTLS = implicitTLS
        self.requireTLS = requireTLS
        self.allowInsecureAuth = allowInsecureAuth
        self.heloName = heloName
        self.timeout = timeout
        self.tlsTrust = tlsTrust
        self.tlsServerName = tlsServerName
    }

    /// Checks the parts of the configuration that do not depend on the message.
    func validate() throws(SMTPError) {
        if host.isEmpty || host.contains(where: { $0.isWhitespace || $0.isNewline }) {
            throw .invalidConfiguration("host \"\(host)\" is empty or contains whitespace")
        }
        if !(1...65535).contains(port) {
            throw .invalidConfiguration("port \(port) is outside 1...65535")
        }
        if heloName.isEmpty
            || heloName.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value >= 0x7F })
        {
            throw .invalidConfiguration("heloName \"\(heloName)\" must be non-empty printable ASCII without spaces")
        }
        if timeout <= .zero {
            throw .invalidConfiguration("timeout must be positive")
        }
        if let username {
            if username.isEmpty {
                throw .invalidConfiguration("username is empty (use nil to disable authentication)")
            }
            if username.contains("\u{0}") || (password ?? "").contains("\u{0}") {
                throw .invalidConfiguration("username and password must not contain NUL")
            }
        } else if password != nil {
            throw .invalidConfiguration("a password is configured without a username")
        }
        if let fromName {
            try SMTPMessageFormatter.checkHeaderText(fromName, field: "from name")
        }
        if let tlsServerName, tlsServerName.isEmpty || tlsServerName.contains(where: \.isWhitespace) {
            throw .invalidConfiguration("tlsServerName \"\(tlsServerName)\" is empty or contains whitespace")
        }
    }
}
