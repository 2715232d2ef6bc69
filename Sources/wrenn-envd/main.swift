// wrenn-envd: the guest agent alone, as baked into capsule images. Flags are parsed by `EnvdCommandLine`.
import Foundation
import Logging
import ServiceLifecycle
import WrennEnvd

let commandLine: EnvdCommandLine
do {
    commandLine = try EnvdCommandLine.parse(Array(CommandLine.arguments.dropFirst()))
} catch {
    FileHandle.standardError.write(Data("wrenn-envd: \(error.message)\n".utf8))
    exit(2)
}

LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = commandLine.logLevel.flatMap(Logger.Level.init(rawValue:)) ?? .info
    return handler
}
let logger = Logger(label: "wrenn.envd")
let host = commandLine.configuration.host

let server = EnvdServer(configuration: commandLine.configuration, logger: logger) { port in
    // One machine-readable line for supervisors and tests.
    FileHandle.standardOutput.write(Data("wrenn-envd listening on \(host):\(port)\n".utf8))
}
if commandLine.exitOnStdinClose {
    StdinWatcher.start()
}
let group = ServiceGroup(
    configuration: .init(services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
)
do {
    try await group.run()
} catch {
    logger.error("envd stopped", metadata: ["error": "\(error)"])
    exit(1)
}
