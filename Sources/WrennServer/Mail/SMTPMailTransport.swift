import Logging

/// Adapts the SMTP client to the mailer's transport.
enum SMTPMailTransport {
    static func make(_ settings: ServerConfig.SMTPSettings, logger: Logger) -> Mailer.Transport {
        let configuration = SMTPConfiguration(host: settings.host, port: settings.port, username: settings.username,
                                              password: settings.password, fromAddress: settings.fromAddress,
                                              implicitTLS: settings.port == 465, requireTLS: settings.requireTLS)
        let client = SMTPClient(configuration: configuration, logger: logger)
        return { to, subject, body in try await client.send(to: to, subject: subject, textBody: body) }
    }
}
