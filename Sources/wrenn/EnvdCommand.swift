import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import WrennEnvd

/// `wrenn envd`: the guest agent (the same server as the slim `wrenn-envd` binary baked into images), for running
/// envd on a host by hand. Flags are envd's own (`wrenn envd --help` prints them).
struct EnvdCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "envd",
        abstract: "Run envd, the agent inside capsules (processes, PTYs, files).",
        discussion: EnvdCommandLine.usage
    )

    @Argument(parsing: .captureForPassthrough, help: "envd's flags.") var arguments: [String] = []

    func run() async throws {
        let commandLine = try Self.parse(arguments)
        let logger = Logging.bootstrapped(label: "wrenn.envd", level: commandLine.logLevel ?? "info")
        let host = commandLine.configuration.host
        let server = EnvdServer(configuration: commandLine.configuration, logger: logger) { port in
            FileHandle.standardOutput.write(Data("wrenn-envd listening on \(host):\(port)\n".utf8))
        }
        let group = ServiceGroup(configuration: .init(services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }

    /// envd's flags, with its parse errors shown as usage errors.
    static func parse(_ arguments: [String]) throws -> EnvdCommandLine {
        do {
            return try EnvdCommandLine.parse(arguments)
        } catch {
            throw ValidationError("\(error)")
        }
    }
}
