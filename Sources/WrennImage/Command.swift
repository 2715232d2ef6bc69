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

    private func makeProcess() throws -> Process {
        guard let path = Command.resolve(executable) else { throw CommandError.notFound(executable) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        if !environment.isEmpty {
            var env = ProcessInfo.processInfo.environment
            for (key, value) in environment { env[key] = value }
            process.environment = env
        }
        if let workingDirectory { process.currentDirectoryURL = URL(fileURLWithPath: workingDirectory) }
        return process
    }

    /// Runs the command to completion, capturing stdout and stderr; optional `stdin` bytes are fed to it.
    ///
    /// Blocking work happens on a dedicated thread so callers on the cooperative pool are not starved.
    public func run(stdin: Data? = nil) async throws -> Output {
        let process = try makeProcess()
        let outPipe = Pipe()
        let errPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = errPipe
        let inPipe: Pipe? = stdin == nil ? nil : Pipe()
        if let inPipe { process.standardInput = inPipe } else { process.standardInput = FileHandle.nullDevice }
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Output, any Error>) in
            let thread = Thread {
                do {
                    try process.run()
                } catch {
                    continuation.resume(throwing: CommandError.launchFailed(self.displayString, String(describing: error)))
                    return
                }
                if let inPipe, let stdin {
                    let writer = Thread {
                        inPipe.fileHandleForWriting.write(stdin)
                        try? inPipe.fileHandleForWriting.close()
                    }
                    writer.start()
                }
                let errorCollector = DataCollector()
                let errThread = Thread {
                    errorCollector.set(errPipe.fileHandleForReading.readDataToEndOfFile())
                }
                errThread.start()
                let out = outPipe.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                let err = errorCollector.wait()
                continuation.resume(returning: Output(status: process.terminationStatus, stdout: out, stderr: err))
            }
            thread.start()
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
        let process = try makeProcess()
        let input: FileHandle? = try stdinFile.map { try FileHandle(forReadingFrom: URL(fileURLWithPath: $0)) }
        var output: FileHandle?
        if let stdoutFile {
            FileManager.default.createFile(atPath: stdoutFile, contents: nil)
            output = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutFile))
        }
        process.standardInput = input ?? FileHandle.nullDevice
        process.standardOutput = output ?? FileHandle.nullDevice
        let errPipe = Pipe()
        process.standardError = errPipe
        let display = displayString
        let result: (Int32, Data) = try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                do { try process.run() } catch {
                    continuation.resume(throwing: CommandError.launchFailed(display, String(describing: error)))
                    return
                }
                let err = errPipe.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                continuation.resume(returning: (process.terminationStatus, err))
            }
            thread.start()
        }
        try? input?.close()
        try? output?.close()
        guard result.0 == 0 else {
            throw CommandError.failed(display, result.0, String(decoding: result.1, as: UTF8.self))
        }
    }
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
