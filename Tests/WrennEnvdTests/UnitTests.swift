import NIOCore
import Testing
@testable import WrennEnvd
import WrennHTTP

@Suite("envd building blocks")
struct UnitTests {
    @Test("the output log evicts old chunks and tells late readers how much they missed")
    func outputLogEviction() async {
        let log = OutputLog(capacity: 10)
        for i in 0..<5 {
            log.append(OutputChunk(channel: .stdout, bytes: ByteBuffer(string: "abcd\(i)")))
        }
        let batch = log.snapshot(after: 0)
        #expect(batch.dropped == 15)
        #expect(batch.chunks.map { String(buffer: $0.bytes) } == ["abcd3", "abcd4"])
        #expect(batch.next == 25)
        log.finish(ExitInfo(exitCode: 0, signal: nil))
        let end = await log.read(after: batch.next)
        #expect(end.chunks.isEmpty)
        #expect(end.exit?.exitCode == 0)
    }

    @Test("a waiting reader wakes on append and on cancellation")
    func outputLogWaits() async {
        let log = OutputLog(capacity: 100)
        async let batch = log.read(after: 0)
        try? await Task.sleep(for: .milliseconds(50))
        log.append(OutputChunk(channel: .stderr, bytes: ByteBuffer(string: "x")))
        #expect(await batch.chunks.count == 1)
        let waiting = Task { await log.read(after: 1) }
        waiting.cancel()
        #expect(await waiting.value.chunks.isEmpty)
    }

    @Test("UTF-8 characters split across reads are held back until complete")
    func utf8Boundary() {
        var splitter = UTF8Boundary()
        let bytes = Array("aé€😀".utf8)
        var out: [UInt8] = []
        for byte in bytes {
            let ready = splitter.feed(ByteBuffer(bytes: [byte]))
            out += Array(ready.readableBytesView)
            #expect(String(validating: out, as: UTF8.self) != nil)
        }
        out += Array(splitter.flush().readableBytesView)
        #expect(out == bytes)
        #expect(UTF8Boundary.incompleteTailLength(ByteBuffer(bytes: [0xff, 0xfe]).readableBytesView) == 0)
    }

    @Test("permission strings match ls -l")
    func permissions() {
        #expect(FileEntries.permissions(0o100755) == "-rwxr-xr-x")
        #expect(FileEntries.permissions(0o040700) == "drwx------")
        #expect(FileEntries.permissions(0o104755) == "-rwsr-xr-x")
        #expect(FileEntries.permissions(0o041777) == "drwxrwxrwt")
        #expect(FileEntries.permissions(0o120777) == "lrwxrwxrwx")
    }

    @Test("paths must be absolute and are normalized lexically")
    func paths() throws {
        #expect(try FilePaths.normalize("/a/./b/../c//d/") == "/a/c/d")
        #expect(try FilePaths.normalize("/../../etc") == "/etc")
        #expect(throws: EnvdError.self) { try FilePaths.normalize("a/b") }
        #expect(FilePaths.parent(of: "/a/b") == "/a")
        #expect(FilePaths.parent(of: "/a") == "/")
    }

    @Test("token comparison")
    func tokens() {
        #expect(ConstantTime.equal(Array("secret".utf8), Array("secret".utf8)))
        #expect(!ConstantTime.equal(Array("secreT".utf8), Array("secret".utf8)))
        #expect(!ConstantTime.equal(Array("secret-longer".utf8), Array("secret".utf8)))
        #expect(!ConstantTime.equal([], []))
    }

    @Test("command line: flags, env fallbacks, token file")
    func commandLine() throws {
        let parsed = try EnvdCommandLine.parse(
            ["--port=0", "--token", "t", "--env", "A=b=c", "--default-user", "wrenn-user", "--pty-ping-seconds", "0.5"], environment: [:]
        )
        #expect(parsed.configuration.port == 0)
        #expect(parsed.configuration.defaultEnv == ["A": "b=c"])
        #expect(parsed.configuration.defaultUser == "wrenn-user")
        #expect(parsed.configuration.ptyPingInterval == .milliseconds(500))
        let fromEnv = try EnvdCommandLine.parse([], environment: ["WRENN_ENVD_TOKEN": "e", "WRENN_CAPSULE_ID": "cl-x"])
        #expect(fromEnv.configuration.accessToken == "e")
        #expect(fromEnv.configuration.capsuleID == "cl-x")
        #expect(throws: EnvdCommandLineError.self) { try EnvdCommandLine.parse(["--bogus"], environment: ["WRENN_ENVD_TOKEN": "e"]) }
    }
}
