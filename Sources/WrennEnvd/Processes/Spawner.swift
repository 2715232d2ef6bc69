import CWrennSpawn
import Foundation

/// Descriptors the child gets as 0, 1 and 2.
struct ChildStdio {
    var stdin: Int32
    var stdout: Int32
    var stderr: Int32
    /// The three are the slave side of a PTY that becomes the controlling terminal.
    var controllingTTY: Bool
}

/// fork + exec through CWrennSpawn: new session (pid = process group), user switched and checked, cwd set.
enum Spawner {
    static func spawn(_ spec: LaunchSpec, stdio: ChildStdio) throws(EnvdError) -> pid_t {
        let argv = spec.argv.map { strdup($0) } + [nil]
        let envp = spec.environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        var stage: Int32 = 0
        let account = spec.account
        let rc: Int32 = spec.executable.withCString { path in
            spec.cwd.withCString { cwd in
                account.groups.withUnsafeBufferPointer { groups in
                    argv.withUnsafeBufferPointer { argvBuffer in
                        envp.withUnsafeBufferPointer { envpBuffer in
                            var attr = wrenn_spawn_attr()
                            attr.path = path
                            attr.argv = argvBuffer.baseAddress
                            attr.envp = envpBuffer.baseAddress
                            attr.cwd = cwd
                            attr.stdin_fd = stdio.stdin
                            attr.stdout_fd = stdio.stdout
                            attr.stderr_fd = stdio.stderr
                            attr.controlling_tty = stdio.controllingTTY ? 1 : 0
                            attr.change_user = account.isCurrentProcessUser ? 0 : 1
                            attr.uid = account.uid
                            attr.gid = account.gid
                            attr.groups = groups.baseAddress
                            attr.ngroups = Int32(groups.count)
                            return wrenn_spawn(&attr, &pid, &stage)
                        }
                    }
                }
            }
        }
        guard rc == 0 else { throw describe(errno: rc, stage: stage, spec: spec) }
        return pid
    }

    private static func describe(errno code: Int32, stage: Int32, spec: LaunchSpec) -> EnvdError {
        let reason = String(cString: strerror(code))
        switch UInt32(stage) {
        case WRENN_STAGE_CHDIR.rawValue:
            return .invalid("cannot change to cwd \(spec.cwd) as \(spec.account.name): \(reason)")
        case WRENN_STAGE_EXEC.rawValue:
            return .invalid("cannot execute \(spec.executable) as \(spec.account.name): \(reason)")
        case WRENN_STAGE_SETGROUPS.rawValue, WRENN_STAGE_SETGID.rawValue, WRENN_STAGE_SETUID.rawValue,
            WRENN_STAGE_UID_CHECK.rawValue:
            return .forbidden("cannot switch to user \(spec.account.name): \(reason)")
        default:
            return .internalError("spawn failed at stage \(stage): \(reason)")
        }
    }
}

/// Pipes and /dev/null, close-on-exec (the child's copies are made by dup2).
enum Pipes {
    /// A pipe as (read end, write end).
    static func make() throws(EnvdError) -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        let rc = wrenn_pipe_cloexec(&fds)
        guard rc == 0 else {
            throw .internalError("pipe: \(String(cString: strerror(rc)))")
        }
        return (fds[0], fds[1])
    }

    static func devNull() throws(EnvdError) -> Int32 {
        let fd = open("/dev/null", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw .internalError("open /dev/null: \(String(cString: strerror(errno)))") }
        return fd
    }
}
