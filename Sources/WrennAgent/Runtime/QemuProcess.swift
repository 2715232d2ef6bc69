import Foundation
import WrennImage

/// Starting and stopping one QEMU process (daemonized, inside the capsule's network namespace).
enum QemuProcess {
    /// Launches `machine` (inside `namespace` when given) and returns QEMU's PID once it has daemonized.
    static func launch(_ machine: QemuMachine, namespace: String?) async throws -> Int32 {
        try? FileManager.default.removeItem(atPath: machine.qmpSocket)
        try? FileManager.default.removeItem(atPath: machine.pidFile)
        var argv = machine.argv
        if let namespace { argv = ["ip", "netns", "exec", namespace] + argv }
        let output = try await Command(argv[0], Array(argv.dropFirst())).run()
        guard output.status == 0 else {
            throw RuntimeError.vmm("qemu failed to start (exit \(output.status)): \(output.stderrText.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        guard let pid = readPID(machine.pidFile) else { throw RuntimeError.vmm("qemu started but wrote no pid file") }
        return pid
    }

    /// Reads a PID file.
    static func readPID(_ path: String) -> Int32? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Whether `pid` is a live QEMU whose command line mentions `marker` (guards against PID reuse).
    static func isAlive(_ pid: Int32, marker: String) -> Bool {
        guard pid > 0, let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
           let close = stat.lastIndex(of: ")"), stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z") {
            return false
        }
        let cmdline = String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
        return cmdline.contains("qemu-system") && cmdline.contains(marker)
    }

    /// Waits until `pid` exits (or `timeout`); returns whether it exited.
    static func waitForExit(_ pid: Int32, marker: String, timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while isAlive(pid, marker: marker) {
            if ContinuousClock.now > deadline { return false }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return true
    }

    /// Stops QEMU: QMP `quit` if possible, then SIGKILL; idempotent.
    static func stop(pid: Int32?, qmpSocket: String, marker: String) async {
        if let client = try? await QMPClient.connect(path: qmpSocket, timeout: .milliseconds(500)) {
            _ = try? await client.execute("quit", timeout: .seconds(2))
            await client.close()
        }
        guard let pid else { return }
        if await waitForExit(pid, marker: marker, timeout: .seconds(2)) { return }
        if isAlive(pid, marker: marker) { kill(pid, SIGKILL) }
        _ = await waitForExit(pid, marker: marker, timeout: .seconds(5))
    }
}
