import Foundation
import Logging
import NIOCore
import WrennWire

/// Runs processes for the API: foreground execs, background jobs and exec streams; lists and signals them.
final class ProcessManager: Sendable {
    let table: ProcessTable
    let identity: EnvdIdentity
    let limits: EnvdLimits
    let logger: Logger

    init(table: ProcessTable, identity: EnvdIdentity, limits: EnvdLimits, logger: Logger) {
        self.table = table
        self.identity = identity
        self.limits = limits
        self.logger = logger
    }

    /// Runs to completion (or timeout) and returns the captured output.
    func runForeground(_ request: ExecRequest) async throws(EnvdError) -> ExecResponse {
        let current = identity.current
        let spec = try LaunchSpec.resolve(
            cmd: request.cmd, args: request.args ?? [], envs: request.envs, cwd: request.cwd, user: request.user,
            identity: current
        )
        let timeout: Duration
        if let seconds = request.timeoutSec, seconds > 0 {
            timeout = .seconds(seconds)
        } else {
            timeout = limits.defaultExecTimeout
        }
        let stdin = try Pipes.devNull()
        let out = try Pipes.make()
        let err: (read: Int32, write: Int32)
        do { err = try Pipes.make() } catch {
            [stdin, out.read, out.write].forEach { close($0) }
            throw error
        }
        let pid: pid_t
        do {
            pid = try Spawner.spawn(spec, stdio: ChildStdio(stdin: stdin, stdout: out.write, stderr: err.write, controllingTTY: false))
        } catch {
            [stdin, out.read, out.write, err.read, err.write].forEach { close($0) }
            throw error
        }
        [stdin, out.write, err.write].forEach { close($0) }
        let started = ContinuousClock.now
        let collector = OutputCollector(cap: limits.execOutputCap)
        let exit = await Supervisor.run(
            pid: pid,
            sources: [.init(fd: out.read, channel: .stdout), .init(fd: err.read, channel: .stderr)],
            timeout: timeout, grace: limits.drainGrace
        ) { channel, bytes in collector.add(channel, bytes) }
        let elapsed = ContinuousClock.now - started
        let output = collector.encoded()
        return ExecResponse(
            sandboxId: current.capsuleID, cmd: request.cmd, stdout: output.stdout, stderr: output.stderr,
            exitCode: exit.exitCode, durationMs: Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000),
            encoding: output.encoding, timedOut: exit.timedOut ? true : nil,
            stdoutTruncated: output.stdoutTruncated ? true : nil, stderrTruncated: output.stderrTruncated ? true : nil
        )
    }

    /// Starts a process whose output goes to a replay log; returns once it runs.
    func start(
        cmd: String, args: [String], envs: [String: String]?, cwd: String?, user: String?, tag requestedTag: String?,
        timeout: Duration?, kind: ManagedProcess.Kind
    ) throws(EnvdError) -> ManagedProcess {
        let spec = try LaunchSpec.resolve(cmd: cmd, args: args, envs: envs, cwd: cwd, user: user, identity: identity.current)
        let tag: String
        if let requestedTag {
            try ProcessTable.validate(tag: requestedTag)
            tag = requestedTag
        } else {
            tag = table.newTag(prefix: "proc-")
        }
        try table.reserve(tag)
        let stdin: Int32, out: (read: Int32, write: Int32), err: (read: Int32, write: Int32)
        do {
            stdin = try Pipes.devNull()
            out = try Pipes.make()
            err = try Pipes.make()
        } catch {
            table.release(tag)
            throw error
        }
        let pid: pid_t
        do {
            pid = try Spawner.spawn(spec, stdio: ChildStdio(stdin: stdin, stdout: out.write, stderr: err.write, controllingTTY: false))
        } catch {
            table.release(tag)
            [stdin, out.read, out.write, err.read, err.write].forEach { close($0) }
            throw error
        }
        [stdin, out.write, err.write].forEach { close($0) }
        let log = OutputLog(capacity: limits.processReplayBytes)
        let process = ManagedProcess(pid: pid, tag: tag, cmd: cmd, args: args, kind: kind, log: log)
        table.insert(process)
        let grace = limits.drainGrace
        let logger = self.logger
        Task {
            let exit = await Supervisor.run(
                pid: pid,
                sources: [.init(fd: out.read, channel: .stdout), .init(fd: err.read, channel: .stderr)],
                timeout: timeout, grace: grace
            ) { channel, bytes in log.append(OutputChunk(channel: channel, bytes: bytes)) }
            process.markExited(exit)
            log.finish(exit)
            logger.debug("process exited", metadata: ["tag": "\(tag)", "pid": "\(pid)", "exit_code": "\(exit.exitCode)"])
        }
        logger.debug("process started", metadata: ["tag": "\(tag)", "pid": "\(pid)", "cmd": "\(cmd)"])
        return process
    }

    /// Every process running in the guest, tagged when envd started it.
    func list() -> [ProcessEntry] {
        var tags: [pid_t: String] = [:]
        for process in table.all where process.isRunning {
            tags[process.pid] = process.tag
        }
        return SystemProcesses.scan().map { entry in
            var entry = entry
            entry.tag = tags[entry.pid]
            return entry
        }
    }

    /// Signals a process (its whole group when envd started it). 404 for an unknown selector.
    func signal(selector: String, signal: Int32) throws(EnvdError) {
        if let process = table.find(selector) {
            guard process.isRunning else { throw .notFound("process '\(selector)' has already exited") }
            process.signal(signal)
            return
        }
        guard let pid = pid_t(selector), pid > 0 else { throw .notFound("no process with tag '\(selector)'") }
        guard pid != getpid() else { throw .forbidden("refusing to signal envd itself") }
        if kill(pid, signal) != 0 {
            if errno == ESRCH { throw .notFound("no process with pid \(pid)") }
            throw .forbidden("cannot signal pid \(pid): \(String(cString: strerror(errno)))")
        }
    }

    /// Kills every process group envd started (shutdown).
    func killAll() {
        for process in table.all where process.isRunning {
            process.signal(SIGKILL)
        }
    }
}
