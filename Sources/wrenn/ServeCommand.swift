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

enum Logging {
    /// Bootstraps swift-log once for the process and returns a logger at `level`.
    static func bootstrapped(label: String, level: String) -> Logger {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var logger = Logger(label: label)
        logger.logLevel = Logger.Level(rawValue: level) ?? .info
        return logger
    }
}
