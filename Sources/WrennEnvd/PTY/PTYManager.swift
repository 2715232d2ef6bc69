import CWrennSpawn
import Foundation
import Logging
import NIOCore
import Synchronization
import WrennWire

/// Starts PTY sessions and finds them by tag. Sessions are also in the process table (listed, killable by tag).
final class PTYManager: Sendable {
    private let table: ProcessTable
    private let identity: EnvdIdentity
    private let limits: EnvdLimits
    private let logger: Logger
    private let sessions = Mutex<[String: PTYSession]>([:])

    init(table: ProcessTable, identity: EnvdIdentity, limits: EnvdLimits, logger: Logger) {
        self.table = table
        self.identity = identity
        self.limits = limits
        self.logger = logger
    }

    /// Starts `frame.cmd` (default `/bin/bash`) on a new PTY of `cols`×`rows` (default 80×24).
    func start(_ frame: PTYClientFrame) throws(EnvdError) -> PTYSession {
        let cols = frame.cols ?? 80
        let rows = frame.rows ?? 24
        guard (1...65535).contains(cols), (1...65535).contains(rows) else {
            throw .invalid("cols and rows must be between 1 and 65535")
        }
        let cmd = frame.cmd.flatMap { $0.isEmpty ? nil : $0 } ?? "/bin/bash"
        let spec = try LaunchSpec.resolve(
            cmd: cmd, args: frame.args ?? [], envs: frame.envs, cwd: frame.cwd, user: frame.user,
            identity: identity.current, extraDefaults: ["TERM": "xterm-256color"]
        )
        let tag = table.newTag(prefix: "pty-")
        try table.reserve(tag)
        var master: Int32 = -1
        var slave: Int32 = -1
        let rc = wrenn_open_pty(UInt16(rows), UInt16(cols), &master, &slave)
        guard rc == 0 else {
            table.release(tag)
            throw .internalError("cannot open a PTY: \(String(cString: strerror(rc)))")
        }
        if !spec.account.isCurrentProcessUser {
            _ = fchown(slave, spec.account.uid, spec.account.gid)
        }
        let pid: pid_t
        do {
            pid = try Spawner.spawn(spec, stdio: ChildStdio(stdin: slave, stdout: slave, stderr: slave, controllingTTY: true))
        } catch {
            table.release(tag)
            close(master)
            close(slave)
            throw error
        }
        close(slave)
        let controlFD = fcntl(master, F_DUPFD_CLOEXEC, 3)
        let log = OutputLog(capacity: limits.ptyReplayBytes)
        let process = ManagedProcess(pid: pid, tag: tag, cmd: cmd, args: frame.args ?? [], kind: .pty, log: log)
        let (input, continuation) = AsyncStream<ByteBuffer>.makeStream()
        let session = PTYSession(process: process, controlFD: controlFD, input: continuation)
        sessions.withLock { $0[tag] = session }
        table.insert(process)
        let grace = limits.drainGrace
        let logger = self.logger
        Task {
            let exit = await Supervisor.run(
                pid: pid, sources: [.init(fd: master, channel: .pty)], ptyInput: input, timeout: nil, grace: grace
            ) { _, bytes in log.append(OutputChunk(channel: .pty, bytes: bytes)) }
            process.markExited(exit)
            log.finish(exit)
            session.ended()
            logger.debug("pty exited", metadata: ["tag": "\(tag)", "exit_code": "\(exit.exitCode)"])
        }
        logger.debug("pty started", metadata: ["tag": "\(tag)", "pid": "\(pid)", "cmd": "\(cmd)"])
        return session
    }

    /// The session with `tag`, running or recently exited.
    func find(_ tag: String) -> PTYSession? {
        sessions.withLock { $0[tag] }
    }

    /// Forgets sessions that exited more than `retention` ago (the table is pruned separately).
    func prune(retention: Duration) {
        let now = ContinuousClock.now
        sessions.withLock { all in
            all = all.filter { _, session in
                guard let at = session.process.exitedAt else { return true }
                return now - at < retention
            }
        }
    }
}
