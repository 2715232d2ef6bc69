import Foundation

/// A request to run something, resolved against the capsule's identity: absolute executable, full environment,
/// existing working directory, and the account to run as. Building one validates the request (400s).
struct LaunchSpec: Sendable {
    let executable: String
    let argv: [String]
    let environment: [String: String]
    let cwd: String
    let account: UserAccount

    /// The command as the caller named it (argv[0]).
    var cmd: String { argv.first ?? executable }
    /// The caller's arguments.
    var args: [String] { Array(argv.dropFirst()) }

    static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// Resolves `cmd`, `user`, `cwd` and the environment. `extraDefaults` sits below the request's `envs`
    /// (e.g. `TERM` for a PTY).
    static func resolve(
        cmd: String, args: [String], envs: [String: String]?, cwd: String?, user: String?,
        identity: EnvdIdentity.Value, extraDefaults: [String: String] = [:]
    ) throws(EnvdError) -> LaunchSpec {
        guard !cmd.isEmpty else { throw .invalid("cmd must not be empty") }
        guard !cmd.contains("\0"), !args.contains(where: { $0.contains("\0") }) else {
            throw .invalid("cmd and args must not contain NUL bytes")
        }
        let account: UserAccount
        if let name = user ?? identity.defaultUser, !name.isEmpty {
            account = try UserAccount.lookup(name)
        } else {
            account = UserAccount.current()
        }
        if !account.isCurrentProcessUser && getuid() != 0 {
            throw .forbidden("envd is not running as root and cannot run processes as '\(account.name)'")
        }

        var env: [String: String] = [
            "PATH": defaultPath,
            "HOME": account.home,
            "USER": account.name,
            "LOGNAME": account.name,
            "SHELL": account.shell,
            "WRENN_SANDBOX": "true",
        ]
        if let id = identity.capsuleID {
            env["WRENN_CAPSULE_ID"] = id
            env["WRENN_SANDBOX_ID"] = id
        }
        env.merge(extraDefaults) { _, new in new }
        env.merge(identity.defaultEnv) { _, new in new }
        if let envs {
            for (key, value) in envs {
                guard !key.isEmpty, !key.contains("="), !key.contains("\0"), !value.contains("\0") else {
                    throw .invalid("invalid environment variable name '\(key)'")
                }
                env[key] = value
            }
        }

        let directory: String
        if let cwd, !cwd.isEmpty {
            guard cwd.hasPrefix("/") else { throw .invalid("cwd must be an absolute path: \(cwd)") }
            directory = cwd
        } else {
            directory = FileManager.default.fileExists(atPath: account.home) ? account.home : "/"
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else {
            throw .invalid("cwd \(directory) does not exist")
        }
        guard isDirectory.boolValue else { throw .invalid("cwd \(directory) is not a directory") }

        let executable = try locate(cmd, path: env["PATH"] ?? defaultPath)
        return LaunchSpec(executable: executable, argv: [cmd] + args, environment: env, cwd: directory, account: account)
    }

    /// Finds an executable the way `execvp` would, but against the child's PATH, in the parent.
    static func locate(_ cmd: String, path: String) throws(EnvdError) -> String {
        if cmd.contains("/") {
            guard cmd.hasPrefix("/") else { throw .invalid("cmd must be absolute or a bare name: \(cmd)") }
            guard access(cmd, X_OK) == 0 else { throw .invalid("cannot execute \(cmd): \(String(cString: strerror(errno)))") }
            return cmd
        }
        for directory in path.split(separator: ":") where !directory.isEmpty {
            let candidate = "\(directory)/\(cmd)"
            var info = stat()
            if stat(candidate, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, access(candidate, X_OK) == 0 {
                return candidate
            }
        }
        throw .invalid("command not found: \(cmd)")
    }
}
