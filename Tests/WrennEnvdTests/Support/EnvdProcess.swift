import Foundation
import Testing

/// A real `wrenn-envd` child process on a loopback port, killed when the value goes away (and, should the
/// test runner die, stopped by `--exit-on-stdin-close` when its stdin pipe closes).
final class EnvdProcess: @unchecked Sendable {
    let process: Process
    let port: Int
    let token: String
    private let stdinPipe: Pipe

    var pid: Int32 { process.processIdentifier }
    var baseURL: String { "http://127.0.0.1:\(port)" }
    var wsURL: String { "ws://127.0.0.1:\(port)" }

    /// Path of the built binary: `WRENN_ENVD_BINARY`, else next to the test bundle in the build products.
    static func binaryPath() throws -> String {
        if let explicit = ProcessInfo.processInfo.environment["WRENN_ENVD_BINARY"] { return explicit }
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var directory = exe.deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("wrenn-envd").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        throw EnvdTestError("wrenn-envd binary not found next to \(exe.path); run `swift build --build-tests` (or set WRENN_ENVD_BINARY)")
    }

    /// Starts envd and waits for its "listening" line.
    static func start(token: String = "test-token-\(UInt32.random(in: 0...UInt32.max))", extraArguments: [String] = []) async throws -> EnvdProcess {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try binaryPath())
        process.arguments = ["--host", "127.0.0.1", "--port", "0", "--token", token, "--exit-on-stdin-close", "--log-level", "warning"]
            + extraArguments
        let stdout = Pipe()
        let stdin = Pipe()
        process.standardOutput = stdout
        process.standardInput = stdin
        // Not inherited: a leaked copy of the runner's stderr would keep pipes to the runner open after it exits.
        process.standardError = FileHandle.nullDevice
        try process.run()
        let handle = stdout.fileHandleForReading
        let port: Int = try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                var text = ""
                while true {
                    let data = handle.availableData
                    if data.isEmpty {
                        continuation.resume(throwing: EnvdTestError("envd exited before listening: \(text)"))
                        return
                    }
                    text += String(decoding: data, as: UTF8.self)
                    if let line = text.split(separator: "\n").first(where: { $0.contains("listening on") }),
                        let port = line.split(separator: ":").last.flatMap({ Int($0) })
                    {
                        continuation.resume(returning: port)
                        return
                    }
                }
            }
        }
        return EnvdProcess(process: process, port: port, token: token, stdin: stdin)
    }

    private init(process: Process, port: Int, token: String, stdin: Pipe) {
        self.process = process
        self.port = port
        self.token = token
        self.stdinPipe = stdin
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGTERM)
        }
        try? stdinPipe.fileHandleForWriting.close()
    }

    /// Resident memory of the envd process in bytes (VmRSS of /proc/<pid>/status).
    func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return 0 }
        let kb = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap { Int($0) } ?? 0
        return kb * 1024
    }
}

struct EnvdTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Fails the test instead of hanging when `body` takes longer than `seconds`.
func withTimeout<T: Sendable>(_ seconds: Double, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
            throw EnvdTestError("timed out after \(seconds) s")
        }
        guard let first = try await group.next() else { throw EnvdTestError("no result") }
        group.cancelAll()
        return first
    }
}
