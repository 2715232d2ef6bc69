import Foundation

/// Runs external tools with an argv array (never through a shell), capturing their output.
///
/// Used by the image builder and by the host agent for `ip`, `qemu-img`, `debootstrap` and friends.
public struct Command: Sendable {
    /// Absolute path or bare name of the executable; bare names are looked up in `PATH`.
    public var executable: String
    /// Arguments, passed as-is (no shell quoting or splitting).
    public var arguments: [String]
    /// Extra environment variables layered over the current environment.
    public var environment: [String: String]
    /// Working directory, or `nil` for the current one.
    public var workingDirectory: String?

    /// Creates a command from an executable and its arguments.
    public init(_ executable: String, _ arguments: [String] = [], environment: [String: String] = [:], workingDirectory: String? = nil) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
    }

    /// The outcome of a finished command.
    public struct Output: Sendable {
        /// Exit status (or signal number when terminated by a signal).
        public var status: Int32
        /// Captured standard output.
        public var stdout: Data
        /// Captured standard error.
        public var stderr: Data
        /// Standard output decoded as UTF-8 (lossy).
        public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
        /// Standard error decoded as UTF-8 (lossy).
        public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
    }

    /// The command line for messages and logs (not for execution).
    public var displayString: String { ([executable] + arguments).joined(separator: " ") }

    /// Resolves a bare executable name through `PATH` (plus the sbin directories root tools live in).
    public static func resolve(_ name: String) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        var dirs = path.split(separator: ":").map(String.init)
        for extra in ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"] where !dirs.contains(extra) {
            dirs.append(extra)
        }
        for dir in dirs {
            let candidate = dir + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Spawns the command with the given fds as stdin/stdout/stderr; every other descriptor is closed in the
    /// child (daemons such as QEMU must not inherit the agent's sockets). Returns the PID.
    public func spawn(stdin: Int32, stdout: Int32, stderr: Int32) throws -> pid_t {
        guard let path = Command.resolve(executable) else { throw CommandError.notFound(executable) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdin, 0)
        posix_spawn_file_actions_adddup2(&actions, stdout, 1)
        posix_spawn_file_actions_adddup2(&actions, stderr, 2)
        if let closeFrom = SpawnExtensions.addCloseFrom {
            _ = closeFrom(&actions, 3)
        }
        if let workingDirectory {
            guard let addChdir = SpawnExtensions.addChdir else {
                throw CommandError.launchFailed(displayString, "posix_spawn_file_actions_addchdir_np unavailable")
            }
            _ = workingDirectory.withCString { addChdir(&actions, $0) }
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Children start with default signal handling and an empty mask.
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        let argv = [path] + arguments
        let envp = env.map { "\($0.key)=\($0.value)" }
        var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        var cEnv: [UnsafeMutablePointer<CChar>?] = envp.map { strdup($0) } + [nil]
        defer {
            for pointer in cArgs { free(pointer) }
            for pointer in cEnv { free(pointer) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, &attributes, &cArgs, &cEnv)
        guard rc == 0 else { throw CommandError.launchFailed(displayString, String(cString: strerror(rc))) }
        return pid
    }

    /// Reaps `pid` if it has exited (exit status, 128 + signal when killed), or returns `nil` while it runs.
    public static func poll(_ pid: pid_t) -> Int32? {
        var status: Int32 = 0
        let rc = waitpid(pid, &status, WNOHANG)
        guard rc == pid else { return rc < 0 ? -1 : nil }
        if status & 0x7f == 0 { return (status >> 8) & 0xff }
        return 128 + (status & 0x7f)
    }

    /// Waits for `pid` and returns its exit status (128 + signal when killed).
    public static func waitStatus(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return -1 }
        }
        if status & 0x7f == 0 { return (status >> 8) & 0xff }
        return 128 + (status & 0x7f)
    }

    /// Reads a file descriptor to EOF.
    static func readAll(_ fd: Int32) -> Data {
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, 65536) }
            if n > 0 { data.append(contentsOf: buffer[0..<n]) }
            else if n < 0 && errno == EINTR { continue }
            else { break }
        }
        return data
    }

    static func makePipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw CommandError.launchFailed("pipe", String(cString: strerror(errno))) }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        return (fds[0], fds[1])
    }

    /// Runs the command to completion, capturing stdout and stderr; optional `stdin` bytes are fed to it.
    ///
    /// Blocking work happens on dedicated threads so callers on the cooperative pool are not starved.
    public func run(stdin: Data? = nil) async throws -> Output {
        let outPipe = try Self.makePipe()
        let errPipe = try Self.makePipe()
        let inPipe = try Self.makePipe()
        let pid: pid_t
        do {
            pid = try spawn(stdin: inPipe.read, stdout: outPipe.write, stderr: errPipe.write)
        } catch {
            for fd in [outPipe.read, outPipe.write, errPipe.read, errPipe.write, inPipe.read, inPipe.write] { close(fd) }
            throw error
        }
        close(outPipe.write)
        close(errPipe.write)
        close(inPipe.read)
        let input = stdin ?? Data()
        return await withCheckedContinuation { (continuation: CheckedContinuation<Output, Never>) in
            let writer = Thread {
                input.withUnsafeBytes { raw in
                    var offset = 0
                    while offset < raw.count {
                        let n = write(inPipe.write, raw.baseAddress.map { $0 + offset }, raw.count - offset)
                        if n > 0 { offset += n } else if n < 0 && errno == EINTR { continue } else { break }
                    }
                }
                close(inPipe.write)
            }
            writer.start()
            let errorCollector = DataCollector()
            let errThread = Thread {
                errorCollector.set(Self.readAll(errPipe.read))
                close(errPipe.read)
            }
            errThread.start()
            let reader = Thread {
                let out = Self.readAll(outPipe.read)
                close(outPipe.read)
                let err = errorCollector.wait()
                let status = Self.waitStatus(pid)
                continuation.resume(returning: Output(status: status, stdout: out, stderr: err))
            }
            reader.start()
        }
    }

    /// Runs the command and throws ``CommandError/failed(_:_:_:)`` unless it exits 0.
    @discardableResult
    public func check(stdin: Data? = nil) async throws -> Output {
        let output = try await run(stdin: stdin)
        guard output.status == 0 else {
            throw CommandError.failed(displayString, output.status, output.stderrText.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return output
    }

    /// Runs the command with stdin and stdout connected to files (for `cpio`, `gzip`, `xz`), stderr captured.
    public func run(stdinFile: String?, stdoutFile: String?) async throws {
        let input = open(stdinFile ?? "/dev/null", O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw CommandError.launchFailed(displayString, "cannot open \(stdinFile ?? "/dev/null")") }
        defer { close(input) }
        let output = open(stdoutFile ?? "/dev/null", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard output >= 0 else { throw CommandError.launchFailed(displayString, "cannot open \(stdoutFile ?? "/dev/null")") }
        defer { close(output) }
        let errPipe = try Self.makePipe()
        let pid: pid_t
        do {
            pid = try spawn(stdin: input, stdout: output, stderr: errPipe.write)
        } catch {
            close(errPipe.read)
            close(errPipe.write)
            throw error
        }
        close(errPipe.write)
        let result: (Int32, Data) = await withCheckedContinuation { continuation in
            let thread = Thread {
                let err = Self.readAll(errPipe.read)
                close(errPipe.read)
                continuation.resume(returning: (Self.waitStatus(pid), err))
            }
            thread.start()
        }
        guard result.0 == 0 else {
            throw CommandError.failed(displayString, result.0, String(decoding: result.1, as: UTF8.self))
        }
    }
}

/// glibc's posix_spawn extensions (2.29+/2.34+), which Swift's Glibc module hides behind _GNU_SOURCE.
enum SpawnExtensions {
    typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32

    static let addCloseFrom: AddCloseFrom? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: AddCloseFrom.self)
    }()

    static let addChdir: AddChdir? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addchdir_np") else { return nil }
        return unsafeBitCast(symbol, to: AddChdir.self)
    }()
}

/// Collects a value produced on another thread.
final class DataCollector: @unchecked Sendable {
    private let condition = NSCondition()
    private var value: Data?

    func set(_ data: Data) {
        condition.lock()
        value = data
        condition.signal()
        condition.unlock()
    }

    func wait() -> Data {
        condition.lock()
        defer { condition.unlock() }
        while value == nil { condition.wait() }
        return value ?? Data()
    }
}

/// Failures running an external tool.
public enum CommandError: Error, CustomStringConvertible, Equatable {
    /// The executable is not installed (not found in `PATH`).
    case notFound(String)
    /// The process could not be started.
    case launchFailed(String, String)
    /// The process exited non-zero: command line, status, stderr.
    case failed(String, Int32, String)

    /// A one-line explanation.
    public var description: String {
        switch self {
        case .notFound(let name): return "\(name): not found in PATH"
        case .launchFailed(let cmd, let why): return "could not start `\(cmd)`: \(why)"
        case .failed(let cmd, let status, let stderr): return "`\(cmd)` exited \(status): \(stderr)"
        }
    }
}
