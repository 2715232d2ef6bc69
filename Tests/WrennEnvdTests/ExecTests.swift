import Foundation
import Testing
import WrennWire

@Suite("envd foreground exec")
struct ExecTests {
    @Test("text output, exit code, envs and cwd")
    func textOutputEnvsAndCwd() async throws {
        let envd = try await EnvdProcess.start()
        let client = EnvdClient(envd)
        let reply = try await client.post(
            "/exec",
            json: ExecRequest(cmd: "/bin/sh", args: ["-c", "pwd; echo $GREETING; echo oops >&2; exit 7"], envs: ["GREETING": "héllo"], cwd: "/tmp")
        )
        #expect(reply.status == 200)
        let response = try reply.decode(ExecResponse.self)
        #expect(response.stdout == "/tmp\nhéllo\n")
        #expect(response.stderr == "oops\n")
        #expect(response.exitCode == 7)
        #expect(response.encoding == .utf8)
        #expect(response.timedOut == nil)
    }

    @Test("binary output comes back base64 for both streams")
    func binaryOutputIsBase64() async throws {
        let envd = try await EnvdProcess.start()
        let client = EnvdClient(envd)
        let reply = try await client.post(
            "/exec", json: ExecRequest(cmd: "/bin/sh", args: ["-c", #"printf '\000\001\377\376binary'; printf 'plain' >&2"#])
        )
        let response = try reply.decode(ExecResponse.self)
        #expect(response.encoding == .base64)
        #expect(Data(base64Encoded: response.stdout) == Data([0, 1, 0xff, 0xfe] + Array("binary".utf8)))
        #expect(Data(base64Encoded: response.stderr) == Data("plain".utf8))
    }

    @Test("a timeout kills the whole process group and says so")
    func timeoutKillsTheProcessGroup() async throws {
        let envd = try await EnvdProcess.start()
        let client = EnvdClient(envd)
        let marker = "/tmp/envd-timeout-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: marker) }
        let reply = try await client.post(
            "/exec",
            json: ExecRequest(cmd: "/bin/sh", args: ["-c", "sleep 300 & echo $! > \(marker); sleep 300"], timeoutSec: 1)
        )
        let response = try reply.decode(ExecResponse.self)
        #expect(response.timedOut == true)
        #expect(response.exitCode == 128 + 9)
        #expect(response.durationMs >= 900 && response.durationMs < 10_000)
        let grandchild = try #require(Int32(String(contentsOfFile: marker, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        try await Task.sleep(for: .milliseconds(200))
        #expect(!isAlive(grandchild), "the backgrounded sleep in the same process group must be dead")
    }

    @Test("output beyond the cap is discarded without blocking the child")
    func outputIsCapped() async throws {
        let envd = try await EnvdProcess.start()
        let client = EnvdClient(envd)
        let reply = try await client.post("/exec", json: ExecRequest(cmd: "/bin/sh", args: ["-c", "head -c 20000000 /dev/zero | tr '\\0' y; echo done >&2"]))
        let response = try reply.decode(ExecResponse.self)
        #expect(response.exitCode == 0)
        #expect(response.stdout.utf8.count == 16 << 20)
        #expect(response.stdoutTruncated == true)
        #expect(response.stderr == "done\n")
    }

    @Test("bad requests are clear 400s: missing cwd, unknown user, unknown command, relative cwd")
    func badRequestsAreClear() async throws {
        let envd = try await EnvdProcess.start()
        let client = EnvdClient(envd)
        let cases: [(ExecRequest, String)] = [
            (ExecRequest(cmd: "ls", cwd: "/definitely/not/here"), "does not exist"),
            (ExecRequest(cmd: "id", user: "no-such-user-xyz"), "does not exist"),
            (ExecRequest(cmd: "no-such-command-xyz"), "command not found"),
            (ExecRequest(cmd: "ls", cwd: "relative/dir"), "absolute"),
        ]
        for (request, text) in cases {
            let reply = try await client.post("/exec", json: request)
            #expect(reply.status == 400, "\(request)")
            let envelope = try reply.decode(ErrorEnvelope.self)
            #expect(envelope.error.code == "invalid_request")
            #expect(envelope.error.message.contains(text), "\(envelope.error.message)")
        }
    }

    @Test("processes run as the requested user")
    func runsAsRequestedUser() async throws {
        guard getuid() == 0 else { return }
        let envd = try await EnvdProcess.start()
        let client = EnvdClient(envd)
        let reply = try await client.post("/exec", json: ExecRequest(cmd: "/bin/sh", args: ["-c", "id -u; echo $HOME; id -G"], user: "nobody"))
        let response = try reply.decode(ExecResponse.self)
        let lines = response.stdout.split(separator: "\n")
        #expect(lines.first == "65534")
        #expect(!response.stdout.contains(" 0\n") && lines.last != "0", "no root group left: \(response.stdout)")
    }
}

func isAlive(_ pid: Int32) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return false }
    // Field 3 (after the parenthesised name) is the state; a zombie is dead.
    guard let close = stat.lastIndex(of: ")") else { return false }
    let state = stat[stat.index(close, offsetBy: 2)]
    return state != "Z" && state != "X"
}
