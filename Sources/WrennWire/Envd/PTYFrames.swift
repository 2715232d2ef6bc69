/// A client frame of a PTY session.
///
/// First frame: `{"type":"start","cmd"?,"args"?,"cols"?,"rows"?,"envs"?,"cwd"?,"user"?}` or
/// `{"type":"connect","tag":"pty-…"}`. Then `{"type":"input","data":"<base64>"}`,
/// `{"type":"resize","cols":C,"rows":R}`, `{"type":"kill"}`; `pong` and `ping` are accepted and ignored.
public struct PTYClientFrame: Codable, Sendable, Equatable {
    /// Frame kinds.
    public enum Kind: String, Codable, Sendable {
        case start, connect, input, resize, kill, ping, pong
    }

    /// Frame kind.
    public var type: Kind
    /// `start`: program (default `/bin/bash`).
    public var cmd: String?
    /// `start`: arguments.
    public var args: [String]?
    /// `start`/`resize`: columns (default 80).
    public var cols: Int?
    /// `start`/`resize`: rows (default 24).
    public var rows: Int?
    /// `start`: extra environment (`TERM` defaults to `xterm-256color`).
    public var envs: [String: String]?
    /// `start`: working directory.
    public var cwd: String?
    /// `start`: user to run as.
    public var user: String?
    /// `connect`: the session's tag.
    public var tag: String?
    /// `input`: base64 bytes to type.
    public var data: String?

    public init(
        type: Kind, cmd: String? = nil, args: [String]? = nil, cols: Int? = nil, rows: Int? = nil,
        envs: [String: String]? = nil, cwd: String? = nil, user: String? = nil, tag: String? = nil, data: String? = nil
    ) {
        self.type = type
        self.cmd = cmd
        self.args = args
        self.cols = cols
        self.rows = rows
        self.envs = envs
        self.cwd = cwd
        self.user = user
        self.tag = tag
        self.data = data
    }
}

/// A server frame of a PTY session.
///
/// `{"type":"started","tag":"pty-…","pid":N}`, `{"type":"output","data":"<base64>"}`,
/// `{"type":"exit","exit_code":N}`, `{"type":"error","data":"…","fatal":true}`, `{"type":"ping"}`.
/// `dropped` on the first `output` after a reconnect counts scrollback bytes no longer held.
public struct PTYServerFrame: Codable, Sendable, Equatable {
    /// Frame kinds.
    public enum Kind: String, Codable, Sendable {
        case started, output, exit, error, ping
    }

    /// Frame kind.
    public var type: Kind
    /// `started`: session tag.
    public var tag: String?
    /// `started`: process id.
    public var pid: Int32?
    /// `output`: base64 terminal bytes; `error`: message.
    public var data: String?
    /// `exit`: exit status.
    public var exitCode: Int32?
    /// `error`: true when the session (or this socket) cannot continue.
    public var fatal: Bool?
    /// `output`: bytes of scrollback lost before this frame.
    public var dropped: Int?

    public init(
        type: Kind, tag: String? = nil, pid: Int32? = nil, data: String? = nil, exitCode: Int32? = nil,
        fatal: Bool? = nil, dropped: Int? = nil
    ) {
        self.type = type
        self.tag = tag
        self.pid = pid
        self.data = data
        self.exitCode = exitCode
        self.fatal = fatal
        self.dropped = dropped
    }

    enum CodingKeys: String, CodingKey {
        case type, tag, pid, data, fatal, dropped
        case exitCode = "exit_code"
    }
}
