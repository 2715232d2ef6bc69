import ArgumentParser

/// The `wrenn` command: runs the servers and is a client for people at a terminal.
@main
struct WrennCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wrenn",
        abstract: "Wrenn: isolated, pausable microVM capsules for AI agents' code.",
        subcommands: [ServeCommand.self, DevCommand.self, AgentCommand.self, EnvdCommand.self, ImageCommand.self, BenchCommand.self, AdminCommand.self, TemplateCommand.self]
    )
}
