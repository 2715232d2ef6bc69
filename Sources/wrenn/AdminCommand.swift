import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import WrennServer

/// `wrenn admin`: platform-admin tasks run on the control plane's host, against its configured database directly
/// (the same `WRENN_*`/`DATABASE_URL` environment and `.env` as `wrenn serve`), no session needed.
struct AdminCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin",
        abstract: "Platform-admin tasks on the control plane's host (opens the configured database directly).",
        subcommands: [Grant.self]
    )

    /// `wrenn admin grant EMAIL`: the first admin of a production install (`wrenn dev` creates one by itself).
    struct Grant: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "grant",
            abstract: "Make an existing account a platform admin."
        )

        @Argument(help: "Email of the account (it must have signed up).") var email: String

        func run() async throws {
            let config = try ServerConfig.fromEnvironment()
            let logger = Logging.bootstrapped(label: "wrenn.admin", level: "warning")
            let database = try await Database.open(url: config.databaseURL, logger: logger)
            let email = email
            // The database is a Service (PostgreSQL's pool runs beside its users): run it with the one-shot task, and
            // stop both when the task ends.
            let task = OneShot {
                try await Migrations.apply(to: database, logger: logger)
                do {
                    let id = try await AdminService.grant(email: email, database: database)
                    print("\(email) is a platform admin (\(id))")
                } catch let error as ServiceError {
                    FileHandle.standardError.write(Data("wrenn admin grant: \(error.message)\n".utf8))
                    throw ExitCode.failure
                }
            }
            try await ServiceGroup(configuration: .init(services: [
                .init(service: database),
                .init(service: task, successTerminationBehavior: .gracefullyShutdownGroup),
            ], logger: logger)).run()
        }
    }
}

/// A task run once as a service.
struct OneShot: Service {
    let body: @Sendable () async throws -> Void
    func run() async throws { try await body() }
}
