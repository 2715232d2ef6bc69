/// `POST /exec` body (spec schema `ExecRequest`), plus envd's `user` field.
///
/// `cmd` runs directly with `args` (no shell); callers that want a shell send `cmd:"/bin/sh", args:["-c", …]`.
public struct ExecRequest: Codable, Sendable, Equatable {
    /// Program to run: an absolute path, or a name looked up in the process's `PATH`.
    public var cmd: String
    /// Arguments after the program name.
    public var args: [String]?
    /// Foreground timeout in seconds (default 30); on expiry the whole process group is killed.
    public var timeoutSec: Int?
    /// Start in the background and answer 202 with pid and tag at once.
    public var background: Bool?
    /// Tag for a background process (`proc-` + 8 hex when omitted); must be unique among live processes.
    public var tag: String?
    /// Extra environment variables (over the capsule's defaults).
    public var envs: [String: String]?
    /// Working directory (default: the user's home).
    public var cwd: String?
    /// User to run as (default: the capsule's default user).
    public var user: String?

    public init(
        cmd: String, args: [String]? = nil, timeoutSec: Int? = nil, background: Bool? = nil, tag: String? = nil,
        envs: [String: String]? = nil, cwd: String? = nil, user: String? = nil
    ) {
        self.cmd = cmd
        self.args = args
        self.timeoutSec = timeoutSec
        self.background = background
        self.tag = tag
        self.envs = envs
        self.cwd = cwd
        self.user = user
    }

    enum CodingKeys: String, CodingKey {
        case cmd, args, background, tag, envs, cwd, user
        case timeoutSec = "timeout_sec"
    }
}

/// Output encoding of `ExecResponse` and of stream `data` fields.
public enum OutputEncoding: String, Codable, Sendable {
    case utf8 = "utf-8"
    case base64
}

/// Foreground exec result (spec schema `ExecResponse`), plus envd's `timed_out` and truncation flags.
public struct ExecResponse: Codable, Sendable, Equatable {
    /// Capsule id (set by envd when it knows it).
    public var sandboxId: String?
    /// The program that ran.
    public var cmd: String
    /// Standard output (UTF-8 text, or base64 when `encoding` is `base64`).
    public var stdout: String
    /// Standard error, encoded like `stdout`.
    public var stderr: String
    /// Exit status; 128 + signal number when killed by a signal.
    public var exitCode: Int32
    /// Wall time from spawn to exit.
    public var durationMs: Int
    /// `base64` when either stream was not valid UTF-8 (both are then base64), else `utf-8`.
    public var encoding: OutputEncoding
    /// True when the timeout expired and envd killed the process group.
    public var timedOut: Bool?
    /// True when stdout exceeded the cap and the rest was discarded.
    public var stdoutTruncated: Bool?
    /// True when stderr exceeded the cap and the rest was discarded.
    public var stderrTruncated: Bool?

    public init(
        sandboxId: String?, cmd: String, stdout: String, stderr: String, exitCode: Int32, durationMs: Int,
        encoding: OutputEncoding, timedOut: Bool? = nil, stdoutTruncated: Bool? = nil, stderrTruncated: Bool? = nil
    ) {
        self.sandboxId = sandboxId
        self.cmd = cmd
        self.stdout = stdout
        self.stderr = stderr
        self.exitCode = exitCode
        self.durationMs = durationMs
        self.encoding = encoding
        self.timedOut = timedOut
        self.stdoutTruncated = stdoutTruncated
        self.stderrTruncated = stderrTruncated
    }

    enum CodingKeys: String, CodingKey {
        case cmd, stdout, stderr, encoding
        case sandboxId = "sandbox_id"
        case exitCode = "exit_code"
        case durationMs = "duration_ms"
        case timedOut = "timed_out"
        case stdoutTruncated = "stdout_truncated"
        case stderrTruncated = "stderr_truncated"
    }
}

/// Answer to a background exec (spec schema `BackgroundExecResponse`).
public struct BackgroundExecResponse: Codable, Sendable, Equatable {
    /// Capsule id (set by envd when it knows it).
    public var sandboxId: String?
    /// The program started.
    public var cmd: String
    /// Its process id (also its process group id).
    public var pid: Int32
    /// Its tag.
    public var tag: String

    public init(sandboxId: String?, cmd: String, pid: Int32, tag: String) {
        self.sandboxId = sandboxId
        self.cmd = cmd
        self.pid = pid
        self.tag = tag
    }

    enum CodingKeys: String, CodingKey {
        case cmd, pid, tag
        case sandboxId = "sandbox_id"
    }
}

/// One running process of the guest (spec schema `ProcessEntry`).
public struct ProcessEntry: Codable, Sendable, Equatable {
    /// Process id.
    public var pid: Int32
    /// envd's tag when envd started it.
    public var tag: String?
    /// Program (argv[0], or the kernel's name for the process when it has no command line).
    public var cmd: String
    /// Remaining arguments.
    public var args: [String]?

    public init(pid: Int32, tag: String?, cmd: String, args: [String]?) {
        self.pid = pid
        self.tag = tag
        self.cmd = cmd
        self.args = args
    }
}

/// `GET /processes` answer (spec schema `ProcessListResponse`).
public struct ProcessListResponse: Codable, Sendable, Equatable {
    /// Every process running in the guest.
    public var processes: [ProcessEntry]

    public init(processes: [ProcessEntry]) {
        self.processes = processes
    }
}
