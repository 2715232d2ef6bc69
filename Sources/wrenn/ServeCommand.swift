import ArgumentParser
import Foundation
import Logging
import WrennServer

/// `wrenn serve`: the control plane, configured from the environment (and `.env`).
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the control plane (API server). Configuration comes from WRENN_* environment variables and .env."
    )

    func run() async throws {
        let config = try ServerConfig.fromEnvironment()
        let logger = Logging.bootstrapped(label: "wrenn.serve", level: config.logLevel)
        try await ControlPlane.run(config: config, logger: logger)
    }
}

/// `wrenn dev`: the whole platform on one machine with embedded defaults (SQLite in WRENN_DIR, mail to the log).
struct DevCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev",
        abstract: "Run the platform on this machine with embedded defaults (SQLite, no SMTP: links are logged)."
    )

    @Option(help: "Listen address (host:port).") var listen: String = "127.0.0.1:8080"
    @Option(help: "Data directory.") var dataDir: String = "/var/lib/wrenn"

    func run() async throws {
        var env = ProcessInfo.processInfo.environment
        if env["WRENN_LISTEN_ADDR"] == nil { env["WRENN_LISTEN_ADDR"] = listen }
        if env["WRENN_DIR"] == nil { env["WRENN_DIR"] = dataDir }
        let config = try ServerConfig.fromEnvironment(env)
        let logger = Logging.bootstrapped(label: "wrenn.dev", level: config.logLevel)
        try await ControlPlane.run(config: config, logger: logger, devBootstrap: true)
    }
}

enum Logging {
    /// Bootstraps swift-log once for the process and returns a logger at `level`.
    static func bootstrapped(label: String, level: String) -> Logger {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var logger = Logger(label: label)
        logger.logLevel = Logger.Level(rawValue: level) ?? .info
        return logger
    }
}
