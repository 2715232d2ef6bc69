import Foundation
import Synchronization

/// A process envd started and keeps track of: its tag, its output history and how it ended.
final class ManagedProcess: Sendable {
    /// How it was started.
    enum Kind: String, Sendable {
        case background, stream, pty
    }

    let pid: pid_t
    let tag: String
    let cmd: String
    let args: [String]
    let kind: Kind
    /// Output history (stdout/stderr chunks, or PTY bytes).
    let log: OutputLog
    private let ended = Mutex<(exit: ExitInfo?, at: ContinuousClock.Instant?)>((nil, nil))

    init(pid: pid_t, tag: String, cmd: String, args: [String], kind: Kind, log: OutputLog) {
        self.pid = pid
        self.tag = tag
        self.cmd = cmd
        self.args = args
        self.kind = kind
        self.log = log
    }

    /// True until the process has been reaped.
    var isRunning: Bool { ended.withLock { $0.exit == nil } }

    /// When it was reaped.
    var exitedAt: ContinuousClock.Instant? { ended.withLock { $0.at } }

    /// Records the exit (called by the supervisor once it is reaped).
    func markExited(_ exit: ExitInfo) {
        ended.withLock { $0 = (exit, .now) }
    }

    /// Sends `signal` to the process group (the process is its group's leader). False when nothing was there.
    @discardableResult
    func signal(_ signal: Int32) -> Bool {
        if Foundation.kill(-pid, signal) == 0 { return true }
        return isRunning && Foundation.kill(pid, signal) == 0
    }
}
