import Foundation

/// Parses envd's flags and environment into a configuration (shared by `wrenn-envd` and `wrenn envd`).
///
/// Flags: `--host`, `--port`, `--token`, `--token-file`, `--capsule-id`, `--default-user`, `--env KEY=VALUE`
/// (repeatable), `--pty-ping-seconds`, `--resolv-conf PATH`, `--exit-on-stdin-close`. Environment fallbacks: `WRENN_ENVD_HOST`,
/// `WRENN_ENVD_PORT`, `WRENN_ENVD_TOKEN`, `WRENN_ENVD_TOKEN_FILE`, `WRENN_CAPSULE_ID`, `WRENN_ENVD_DEFAULT_USER`
/// (or `WRENN_DEFAULT_USER`); last resort for the token: `wrenn.envd_token=` on the kernel command line.
public struct EnvdCommandLine: Sendable {
    /// The configuration to run.
    public var configuration: EnvdConfiguration
    /// Exit (gracefully) when standard input reaches end of file: lets a supervisor or test tie envd's
    /// lifetime to a pipe.
    public var exitOnStdinClose: Bool
    /// `--log-level` (swift-log level name), if given.
    public var logLevel: String?

    /// Usage text.
    public static let usage = """
        usage: wrenn-envd [--host ADDR] [--port N] (--token T | --token-file PATH) [--capsule-id ID]
                          [--default-user NAME] [--env KEY=VALUE]... [--pty-ping-seconds N]
                          [--resolv-conf PATH] [--log-level LEVEL] [--exit-on-stdin-close]
        """

    /// Parses `arguments` (without the program name); throws a message suitable for stderr.
    public static func parse(_ arguments: [String], environment: [String: String] = ProcessInfo.processInfo.environment)
        throws(EnvdCommandLineError) -> EnvdCommandLine
    {
        var host = environment["WRENN_ENVD_HOST"] ?? "0.0.0.0"
        var port = environment["WRENN_ENVD_PORT"].flatMap(Int.init) ?? EnvdConfiguration.defaultPort
        var token = environment["WRENN_ENVD_TOKEN"]
        var tokenFile = environment["WRENN_ENVD_TOKEN_FILE"]
        var capsuleID = environment["WRENN_CAPSULE_ID"]
        var defaultUser = environment["WRENN_ENVD_DEFAULT_USER"] ?? environment["WRENN_DEFAULT_USER"]
        var env: [String: String] = [:]
        var ping: Duration = .seconds(30)
        var exitOnStdinClose = false
        var logLevel: String?
        var resolvConf: String?

        var rest = arguments[...]
        func value(_ flag: String) throws(EnvdCommandLineError) -> String {
            guard let next = rest.popFirst() else { throw EnvdCommandLineError(message: "\(flag) needs a value") }
            return next
        }
        while let argument = rest.popFirst() {
            var flag = argument
            if let eq = argument.firstIndex(of: "="), argument.hasPrefix("--") {
                flag = String(argument[..<eq])
                rest.insert(String(argument[argument.index(after: eq)...]), at: rest.startIndex)
            }
            switch flag {
            case "--host": host = try value(flag)
            case "--port":
                guard let p = Int(try value(flag)), (0...65535).contains(p) else {
                    throw EnvdCommandLineError(message: "--port must be 0...65535")
                }
                port = p
            case "--token": token = try value(flag)
            case "--token-file": tokenFile = try value(flag)
            case "--capsule-id": capsuleID = try value(flag)
            case "--default-user": defaultUser = try value(flag)
            case "--env":
                let pair = try value(flag)
                guard let eq = pair.firstIndex(of: "="), eq != pair.startIndex else {
                    throw EnvdCommandLineError(message: "--env wants KEY=VALUE")
                }
                env[String(pair[..<eq])] = String(pair[pair.index(after: eq)...])
            case "--pty-ping-seconds":
                guard let s = Double(try value(flag)), s > 0 else {
                    throw EnvdCommandLineError(message: "--pty-ping-seconds must be positive")
                }
                ping = .milliseconds(Int(s * 1000))
            case "--log-level": logLevel = try value(flag)
            case "--resolv-conf": resolvConf = try value(flag)
            case "--exit-on-stdin-close": exitOnStdinClose = true
            case "-h", "--help": throw EnvdCommandLineError(message: usage)
            default: throw EnvdCommandLineError(message: "unknown argument \(argument)\n\(usage)")
            }
        }
        if token == nil, let tokenFile {
            guard let text = try? String(contentsOfFile: tokenFile, encoding: .utf8) else {
                throw EnvdCommandLineError(message: "cannot read token file \(tokenFile)")
            }
            token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        if token == nil {
            token = kernelCommandLineToken()
        }
        guard let token, !token.isEmpty else {
            throw EnvdCommandLineError(message: "a bearer token is required (--token or --token-file)\n\(usage)")
        }
        var configuration = EnvdConfiguration(
            host: host, port: port, accessToken: token, capsuleID: capsuleID,
            defaultUser: defaultUser.flatMap { $0.isEmpty ? nil : $0 }, defaultEnv: env, ptyPingInterval: ping
        )
        if let resolvConf { configuration.resolvConfPath = resolvConf }
        return EnvdCommandLine(configuration: configuration, exitOnStdinClose: exitOnStdinClose, logLevel: logLevel)
    }
}

/// `wrenn.envd_token=` from /proc/cmdline: how a cold-booted template gets its first token.
private func kernelCommandLineToken() -> String? {
    guard let text = try? String(contentsOfFile: "/proc/cmdline", encoding: .utf8) else { return nil }
    for word in text.split(whereSeparator: { $0 == " " || $0 == "\n" }) where word.hasPrefix("wrenn.envd_token=") {
        return String(word.dropFirst("wrenn.envd_token=".count))
    }
    return nil
}

/// A command-line problem, with the text to print.
public struct EnvdCommandLineError: Error, CustomStringConvertible {
    /// What to tell the user.
    public let message: String
    /// Same as `message`.
    public var description: String { message }
}
