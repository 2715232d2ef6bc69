/// A server frame of the exec stream and of a process attach (WebSocket message or one NDJSON line).
///
/// `{"type":"start","pid":N,"tag":"proc-…"}`, `{"type":"stdout","data":"…"}`, `{"type":"stderr","data":"…"}`,
/// `{"type":"exit","exit_code":N}`, `{"type":"error","data":"…"}`. A data chunk that is not valid UTF-8 is
/// sent base64 with `"encoding":"base64"`. `dropped` counts bytes lost before this frame because the replay
/// buffer had already overwritten them.
public struct ProcessStreamFrame: Codable, Sendable, Equatable {
    /// Frame kinds.
    public enum Kind: String, Codable, Sendable {
        case start, stdout, stderr, exit, error
    }

    /// Frame kind.
    public var type: Kind
    /// `start`: process id.
    public var pid: Int32?
    /// `start`: the process's tag.
    public var tag: String?
    /// `stdout`/`stderr`: output; `error`: message.
    public var data: String?
    /// `base64` when `data` is base64; omitted for UTF-8 text.
    public var encoding: OutputEncoding?
    /// `exit`: exit status (128 + signal when killed by one).
    public var exitCode: Int32?
    /// `exit`: the signal that killed the process, e.g. `SIGKILL`.
    public var signal: String?
    /// `exit`: true when envd killed it because its timeout expired.
    public var timedOut: Bool?
    /// Bytes of output lost (evicted from the replay buffer) before this frame.
    public var dropped: Int?

    public init(
        type: Kind, pid: Int32? = nil, tag: String? = nil, data: String? = nil, encoding: OutputEncoding? = nil,
        exitCode: Int32? = nil, signal: String? = nil, timedOut: Bool? = nil, dropped: Int? = nil
    ) {
        self.type = type
        self.pid = pid
        self.tag = tag
        self.data = data
        self.encoding = encoding
        self.exitCode = exitCode
        self.signal = signal
        self.timedOut = timedOut
        self.dropped = dropped
    }

    enum CodingKeys: String, CodingKey {
        case type, pid, tag, data, encoding, signal, dropped
        case exitCode = "exit_code"
        case timedOut = "timed_out"
    }
}

/// A client frame of the exec stream: `start` first (the exec fields), later `stop`.
public struct ExecStreamClientFrame: Codable, Sendable, Equatable {
    /// Frame kinds.
    public enum Kind: String, Codable, Sendable {
        case start, stop
    }

    /// Frame kind.
    public var type: Kind
    /// `start`: program.
    public var cmd: String?
    /// `start`: arguments.
    public var args: [String]?
    /// `start`: extra environment.
    public var envs: [String: String]?
    /// `start`: working directory.
    public var cwd: String?
    /// `start`: user to run as.
    public var user: String?
    /// `start`: tag (`proc-` + 8 hex when omitted), so the process can be listed and killed by tag.
    public var tag: String?
    /// `start`: timeout in seconds; none when omitted or 0.
    public var timeoutSec: Int?

    public init(
        type: Kind, cmd: String? = nil, args: [String]? = nil, envs: [String: String]? = nil, cwd: String? = nil,
        user: String? = nil, tag: String? = nil, timeoutSec: Int? = nil
    ) {
        self.type = type
        self.cmd = cmd
        self.args = args
        self.envs = envs
        self.cwd = cwd
        self.user = user
        self.tag = tag
        self.timeoutSec = timeoutSec
    }

    enum CodingKeys: String, CodingKey {
        case type, cmd, args, envs, cwd, user, tag
        case timeoutSec = "timeout_sec"
    }
}
