import Foundation
import HTTPTypes
import HummingbirdTesting
import HummingbirdWSClient
import Logging
import NIOCore
import SQLKit
import Testing
import WrennServer
import WrennTestSupport
import WrennWire
#if canImport(Glibc)
import Glibc
#endif

/// `/v1/admin/builds…` end to end: a real control plane and host agent (`EnvdBackedRuntime`: every capsule is a real
/// envd on loopback that runs commands on this machine), local recipes only — no traffic leaves the machine.
@Suite("admin: template builds", .serialized)
struct BuildAPITests {
    struct Setup {
        var cp: TestControlPlane
        var admin: Browser
        var bob: Browser
        var bobSDK: Browser
    }

    static func withAdmin(_ backend: TestBackend, configure: @escaping @Sendable (inout ServerConfig) -> Void = { _ in },
                          _ body: @Sendable @escaping (Setup) async throws -> Void) async throws {
        let agent = try await LocalAgent.start()
        do {
            try await TestControlPlane.run(backend, configure: { config in
                config.agent = .init(url: agent.baseURL, token: agent.token)
                configure(&config)
            }) { cp in
                let admin = try await cp.signedInUser(email: "alice@builds.test")
                try await cp.assembly.database.read { sql in
                    try await sql.raw("UPDATE users SET is_admin = 1 WHERE email = 'alice@builds.test'").run()
                }
                let bob = try await cp.signedInUser(email: "bob@builds.test")
                let key = try #require(try await bob.post("/v1/api-keys", json: ["name": "sdk"]).decode(APIKeyResponse.self).key)
                let sdk = cp.browser()
                sdk.apiKey = key
                try await body(Setup(cp: cp, admin: admin, bob: bob, bobSDK: sdk))
            }
        } catch {
            await agent.stop()
            throw error
        }
        await agent.stop()
    }

    /// Polls until the build is final (or `until` holds).
    static func wait(_ admin: Browser, _ id: String, timeout: Duration = .seconds(60),
                     until: (Build) -> Bool = { $0.status.isFinal }) async throws -> Build {
        let deadline = ContinuousClock.now + timeout
        while true {
            let build = try await admin.get("/v1/admin/builds/\(id)").decode(Build.self)
            if until(build) { return build }
            if ContinuousClock.now > deadline { throw TestBackendError("build \(id) stayed \(build.status) at step \(build.currentStep)") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Waits for the build's capsule to be stopped (destroyed).
    static func waitDestroyed(_ cp: TestControlPlane, _ capsule: String) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            let status = try await cp.assembly.database.read { sql in
                try await sql.raw("SELECT status FROM capsules WHERE id = \(bind: capsule)").first(decodingColumn: "status", as: String.self)
            }
            if status == "stopped" { return }
            if ContinuousClock.now > deadline { throw TestBackendError("build capsule \(capsule) is \(status ?? "missing"), not stopped") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// A tar.gz of `files` (relative path → content), made with the system tar.
    static func tarball(_ files: [String: String]) throws -> Data {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("build-src-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        for (path, content) in files {
            let url = dir.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(content.utf8).write(to: url)
        }
        let out = dir.appendingPathExtension("tar.gz")
        defer { try? FileManager.default.removeItem(at: out) }
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/usr/bin/tar")
        tar.arguments = ["-czf", out.path, "-C", dir.path, "."]
        try tar.run()
        tar.waitUntilExit()
        return try Data(contentsOf: out)
    }

    /// `POST /v1/admin/builds` as multipart: `config` (JSON) and `archive`.
    static func submitMultipart(_ browser: Browser, config: [String: Any], archive: Data) async throws -> TestResponse {
        let boundary = "wrenn-build-\(UUID().uuidString)"
        var body = Data()
        body.append(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"config\"\r\nContent-Type: application/json\r\n\r\n".utf8))
        body.append(try JSONSerialization.data(withJSONObject: config))
        body.append(Data("\r\n--\(boundary)\r\nContent-Disposition: form-data; name=\"archive\"; filename=\"files.tar.gz\"\r\n".utf8))
        body.append(Data("Content-Type: application/gzip\r\n\r\n".utf8))
        body.append(archive)
        body.append(Data("\r\n--\(boundary)--\r\n".utf8))
        var headers = HTTPFields()
        headers[.contentType] = "multipart/form-data; boundary=\(boundary)"
        return try await browser.send("/v1/admin/builds", .post, body: ByteBuffer(data: body), extraHeaders: headers)
    }

    @Test(arguments: TestBackend.available)
    func buildSucceedsAndMakesAPlatformTemplate(_ backend: TestBackend) async throws {
        try await Self.withAdmin(backend) { s in
            let port = try Self.freePort()
            let work = "/tmp/wrenn-buildtest-\(UUID().uuidString.prefix(8))"
            defer { try? FileManager.default.removeItem(atPath: work) }
            let archive = try Self.tarball(["hello.txt": "hello from the archive\n", "site/index.html": "<p>site</p>\n"])
            let recipe = [
                "# a local recipe: nothing leaves the machine",
                "ENV GREETING=hello",
                "ENV MESSAGE=${GREETING} world $$HOME",
                "WORKDIR \(work)",
                "COPY hello.txt site copied/",
                "RUN test \"$MESSAGE\" = 'hello world $HOME' && cat copied/hello.txt && test -f copied/site/index.html",
                "RUN chmod -R a+rX \(work)",
                "USER nobody",
                "RUN --timeout=10s id -un",
                "START exec /usr/bin/python3 -m http.server \(port) --bind 127.0.0.1 --directory \(work)/copied",
            ]
            let healthcheck = "--interval=200ms --timeout=5s --retries=100 /usr/bin/python3 -c \"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:\(port)/hello.txt').read().decode())\""
            let submitted = try await Self.submitMultipart(s.admin, config: ["name": "built-web", "recipe": recipe, "healthcheck": healthcheck,
                                                                             "vcpus": 1, "memory_mb": 256], archive: archive)
            #expect(submitted.status == .accepted)
            let queued = try submitted.decode(Build.self)
            #expect(queued.id.hasPrefix("bld-"))
            #expect(queued.status == .pending || queued.status == .running)
            #expect(queued.hasArchive)
            #expect(queued.totalSteps == 1 + 9 + 1 + 1) // extract, recipe lines, remove files, healthcheck

            let build = try await Self.wait(s.admin, queued.id)
            // Stop the server the START step left running on this machine (its pid is in the step's output).
            if let start = build.logs.first(where: { $0.cmd.hasPrefix("START") }),
               let json = try? JSONSerialization.jsonObject(with: Data(start.stdout.utf8)) as? [String: Any], let pid = json["pid"] as? Int {
                kill(pid_t(pid), SIGTERM)
            }
            #expect(build.error == nil, Comment(rawValue: build.logs.map { "\($0.cmd): \($0.stdout) \($0.stderr)" }.joined(separator: "\n")))
            #expect(build.status == BuildStatus.success)
            #expect(build.logs.count == build.totalSteps)
            #expect(build.logs.allSatisfy { $0.ok })
            #expect(build.logs.map(\.step) == Array(1...build.totalSteps))
            #expect(build.logs.map(\.phase) == ["pre-build"] + Array(repeating: "recipe", count: 9) + ["post-build", "healthcheck"])
            #expect(build.logs.first { $0.cmd.hasPrefix("RUN test") }?.stdout == "hello from the archive\n")
            #expect(build.logs.first { $0.cmd.contains("id -un") }?.stdout == "nobody\n")
            #expect(build.logs.last?.stdout == "hello from the archive\n\n")
            #expect(build.completedAt != nil && build.startedAt != nil)
            // The files were removed before the snapshot.
            #expect(!FileManager.default.fileExists(atPath: "/tmp/wrenn-build-\(build.id)"))

            // A platform template every team sees; the build capsule is gone.
            let templates = try await s.admin.get("/v1/admin/templates").decode([Template].self)
            #expect(templates.first { $0.name == "built-web" }?.platform == true)
            #expect(try await s.bobSDK.get("/v1/snapshots").decode([Template].self).first { $0.name == "built-web" }?.platform == true)
            try await Self.waitDestroyed(s.cp, try #require(build.sandboxId))

            // Another team creates a capsule from it.
            let capsule = try await s.bobSDK.post("/v1/capsules", json: ["template": "built-web"]).decode(Capsule.self)
            #expect(try await CapsuleAPITests.wait(s.bobSDK, capsule.id, for: .running).template == "built-web")
            #expect(try await s.bobSDK.delete("/v1/capsules/\(capsule.id)").status == .accepted)

            // Listed, newest first; the audit log has the submission.
            let list = try await s.admin.get("/v1/admin/builds").decode([Build].self)
            #expect(list.map(\.id) == [build.id])
            #expect(list.first?.status == .success)
        }
    }

    @Test(arguments: TestBackend.available)
    func failingStepFailsTheBuildKeepsLogsAndLeavesNoCapsule(_ backend: TestBackend) async throws {
        try await Self.withAdmin(backend) { s in
            let r = try await s.admin.post("/v1/admin/builds", json: ["name": "broken", "recipe": [
                "RUN echo before", "RUN echo oops >&2; exit 3", "RUN echo never",
            ]])
            #expect(r.status == .accepted)
            let build = try await Self.wait(s.admin, try r.decode(Build.self).id)
            #expect(build.status == .failed)
            #expect(build.error?.contains("step 2") == true)
            #expect(build.logs.count == 2)
            #expect(build.logs.map(\.ok) == [true, false])
            #expect(build.logs[0].stdout == "before\n")
            #expect(build.logs[1].stderr == "oops\n")
            #expect(build.logs[1].exit == 3)
            try await Self.waitDestroyed(s.cp, try #require(build.sandboxId))
            #expect(try await s.admin.get("/v1/admin/templates").decode([Template].self).allSatisfy { $0.name != "broken" })
            // A finished build cannot be cancelled.
            let cancel = try await s.admin.post("/v1/admin/builds/\(build.id)/cancel")
            #expect(cancel.status == .conflict)
            #expect(cancel.errorCode == "invalid_state")
        }
    }

    @Test(arguments: TestBackend.available)
    func cancelStopsARunningBuild(_ backend: TestBackend) async throws {
        try await Self.withAdmin(backend) { s in
            let r = try await s.admin.post("/v1/admin/builds", json: ["name": "slow", "recipe": ["RUN echo started", "RUN --timeout=1m sleep 8"]])
            let id = try r.decode(Build.self).id
            let running = try await Self.wait(s.admin, id) { $0.currentStep == 2 && $0.logs.count == 1 }
            #expect(running.status == .running)
            let capsule = try #require(running.sandboxId)
            #expect(try await s.admin.post("/v1/admin/builds/\(id)/cancel").status == .noContent)
            let cancelled = try await Self.wait(s.admin, id)
            #expect(cancelled.status == .cancelled)
            #expect(cancelled.logs.count == 1)
            try await Self.waitDestroyed(s.cp, capsule)
            // It stays cancelled (the runner does not overwrite it) and left no template.
            try await Task.sleep(for: .milliseconds(500))
            #expect(try await s.admin.get("/v1/admin/builds/\(id)").decode(Build.self).status == .cancelled)
            #expect(try await s.admin.get("/v1/admin/templates").decode([Template].self).allSatisfy { $0.name != "slow" })
        }
    }

    @Test(arguments: TestBackend.available)
    func buildsAreForPlatformAdminsOnly(_ backend: TestBackend) async throws {
        try await Self.withAdmin(backend) { s in
            let body: [String: Any] = ["name": "x", "recipe": ["RUN true"]]
            #expect(try await s.bob.post("/v1/admin/builds", json: body).status == .forbidden)
            #expect(try await s.bob.get("/v1/admin/builds").status == .forbidden)
            #expect(try await s.bobSDK.get("/v1/admin/builds").status == .unauthorized)
            #expect(try await s.bobSDK.post("/v1/admin/builds", json: body).status == .unauthorized)
            #expect(try await s.cp.browser().get("/v1/admin/builds").status == .unauthorized)
            let id = try await s.admin.post("/v1/admin/builds", json: ["name": "quick", "recipe": ["RUN true"]]).decode(Build.self).id
            #expect(try await s.bob.get("/v1/admin/builds/\(id)").status == .forbidden)
            #expect(try await s.bob.post("/v1/admin/builds/\(id)/cancel").status == .forbidden)
            #expect(try await s.bob.get("/v1/admin/builds/\(id)/stream").status == .forbidden)
            #expect(try await s.admin.get("/v1/admin/builds/bld-00000000000000000000000000").status == .notFound)
            #expect(try await Self.wait(s.admin, id).status == .success)

            // Validation: 400 naming the recipe line; unknown base 404; base images cannot be replaced.
            let bad = try await s.admin.post("/v1/admin/builds", json: ["name": "bad", "recipe": ["RUN true", "FROM debian"]])
            #expect(bad.status == .badRequest)
            #expect(bad.errorMessage?.contains("recipe line 2") == true)
            let badCheck = try await s.admin.post("/v1/admin/builds", json: ["name": "bad", "recipe": ["RUN true"], "healthcheck": "--every=1s true"])
            #expect(badCheck.status == .badRequest)
            #expect(badCheck.errorMessage?.contains("healthcheck") == true)
            #expect(try await s.admin.post("/v1/admin/builds", json: ["name": "bad name!", "recipe": ["RUN true"]]).status == .badRequest)
            #expect(try await s.admin.post("/v1/admin/builds", json: ["name": "c", "recipe": ["COPY a b"]]).status == .badRequest)
            #expect(try await s.admin.post("/v1/admin/builds", json: ["name": "c", "base_template": "nope", "recipe": ["RUN true"]]).status == .notFound)
            let reserved = try await s.admin.post("/v1/admin/builds", json: ["name": "minimal", "recipe": ["RUN true"]])
            #expect(reserved.status == .conflict)
            #expect(reserved.errorCode == "name_reserved")
        }
    }

    /// Collects a console's text frames until the server closes it.
    static func console(_ cp: TestControlPlane, _ browser: Browser, _ id: String,
                        onFrame: @escaping @Sendable (BuildConsoleFrame) async throws -> Void = { _ in }) async throws
        -> (frames: [BuildConsoleFrame], close: WebSocketCloseFrame?) {
        let port = try #require(cp.client.port)
        var headers = HTTPFields()
        headers[.cookie] = browser.cookies.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: "; ")
        var logger = Logger(label: "test.ws")
        logger.logLevel = .critical
        let frames = CapsuleAPITests.Frames()
        let close = try await WebSocketClient.connect(url: "ws://127.0.0.1:\(port)/v1/admin/builds/\(id)/stream",
                                                      configuration: .init(additionalHeaders: headers), logger: logger) { inbound, _, _ in
            for try await message in inbound.messages(maxSize: 1 << 20) {
                guard case .text(let text) = message else { continue }
                frames.append(text)
                try await onFrame(try WireCoding.makeDecoder().decode(BuildConsoleFrame.self, from: Data(text.utf8)))
            }
        }
        return (try frames.all.map { try WireCoding.makeDecoder().decode(BuildConsoleFrame.self, from: Data($0.utf8)) }, close)
    }

    @Test(.timeLimit(.minutes(2)), arguments: TestBackend.available)
    func consoleReplaysThenTailsAndCloses(_ backend: TestBackend) async throws {
        try await Self.withAdmin(backend) { s in
            let gate = "/tmp/wrenn-build-gate-\(UUID().uuidString)"
            let gate2 = gate + "-2"
            defer { for path in [gate, gate2] { try? FileManager.default.removeItem(atPath: path) } }
            let r = try await s.admin.post("/v1/admin/builds", json: ["name": "console", "recipe": [
                "RUN echo one",
                "RUN --timeout=30s while [ ! -f \(gate) ]; do sleep 0.05; done; echo two; echo warn >&2; while [ ! -f \(gate2) ]; do sleep 0.05; done; echo three",
            ]])
            let id = try r.decode(Build.self).id
            _ = try await Self.wait(s.admin, id) { $0.logs.count == 1 && $0.currentStep == 2 }
            // Connect mid-build: step 1 is replayed, then step 2 arrives live once the gate opens. Its output is
            // streamed while it runs: the step only goes on (gate2) once "warn" has reached this viewer.
            let live = try await Self.console(s.cp, s.admin, id) { frame in
                if frame.type == "step-start", frame.step == 2 { FileManager.default.createFile(atPath: gate, contents: nil) }
                if frame.type == "output", frame.data == "warn\n" { FileManager.default.createFile(atPath: gate2, contents: nil) }
            }
            let types = live.frames.map(\.type)
            #expect(types == ["build-status", "step-start", "output", "step-end", "step-start", "output", "output", "output", "step-end", "build-status"])
            #expect(live.frames[1].cmd == "RUN echo one")
            #expect(live.frames[2].data == "one\n")
            // stdout and stderr are separate pipes: either may come first.
            #expect(Set(live.frames[5...6].map { "\($0.stream ?? "")|\($0.data ?? "")" }) == ["stdout|two\n", "stderr|warn\n"])
            #expect(live.frames[7].data == "three\n" && live.frames[7].stream == "stdout")
            #expect(live.frames[8].ok == true)
            #expect(live.frames.last?.status == .success)
            #expect(live.close?.closeCode == .normalClosure)

            // After the end: the whole build replayed from the database, then closed.
            let replay = try await Self.console(s.cp, s.admin, id)
            #expect(replay.frames.map(\.type) == ["step-start", "output", "step-end", "step-start", "output", "output", "step-end", "build-status"])
            #expect(replay.frames.last?.status == .success)

            // Not for bob: 403 before the upgrade; unknown build 404, both with the envelope.
            let port = try #require(s.cp.client.port)
            let bob = try RawWebSocket.handshake(port: port, host: "localhost", path: "/v1/admin/builds/\(id)/stream",
                                                 headers: ["Cookie": s.bob.cookieHeader])
            #expect(bob.status == 403 && bob.errorCode == "forbidden")
            let unknown = try RawWebSocket.handshake(port: port, host: "localhost", path: "/v1/admin/builds/bld-00000000000000000000000000/stream",
                                                     headers: ["Cookie": s.admin.cookieHeader])
            #expect(unknown.status == 404 && unknown.errorCode == "not_found")
        }
    }

    /// The console outlives silent steps: the server pings every WebSocket client (here every second) and drops
    /// one whose pong it does not see; the console reads its inbound side so the pongs are seen. (Unread, a step
    /// silent for one ping period — a pip install — ended the console without its last steps and status.)
    @Test(.timeLimit(.minutes(2)))
    func consoleSurvivesSilentSteps() async throws {
        try await Self.withAdmin(.sqlite, configure: { $0.webSocketPingInterval = .seconds(1) }) { s in
            let r = try await s.admin.post("/v1/admin/builds", json: ["name": "quiet", "recipe": ["RUN echo early", "RUN sleep 4; echo late"]])
            let id = try r.decode(Build.self).id
            let console = try await Self.console(s.cp, s.admin, id)
            #expect(console.frames.contains { $0.data == "late\n" }, "\(console.frames.map(\.type))")
            #expect(console.frames.last?.type == "build-status" && console.frames.last?.status == .success)
            #expect(console.close?.closeCode == .normalClosure)
        }
    }

    /// `wrenn template build`'s client: signs in as the admin, submits a recipe file, follows it to the end.
    @Test(arguments: TestBackend.available)
    func templateBuildClientSubmitsARecipeFile(_ backend: TestBackend) async throws {
        try await Self.withAdmin(backend) { s in
            let port = try #require(s.cp.client.port)
            let file = try RecipeFile.parse("# local\nENV WHO=cli\nRUN echo built by $WHO\nHEALTHCHECK --interval=100ms --retries=3 true\n")
            #expect(file.healthcheck == "--interval=100ms --retries=3 true")
            let lines = Lines()
            let client = TemplateBuildClient(baseURL: "http://127.0.0.1:\(port)/", email: "alice@builds.test", password: "correct horse")
            let build = try await client.run(CreateBuildRequest(name: "from-cli", recipe: file.recipe, healthcheck: file.healthcheck)) { lines.append($0) }
            #expect(build.status == .success)
            #expect(build.logs.map(\.cmd) == ["ENV WHO=cli", "RUN echo built by $WHO", "HEALTHCHECK true"])
            #expect(lines.all.last?.hasSuffix("success") == true)
            // Followed through the live console: steps as they start, their output line by line, how they ended.
            #expect(lines.all.contains("[2/3] RUN echo built by $WHO") && lines.all.contains("built by cli"), "\(lines.all)")
            #expect(lines.all.contains { $0.hasPrefix("[3/3] ok ") })

            // With a context folder: the archive the CLI makes, streamed as multipart, is what COPY reads.
            let context = FileManager.default.temporaryDirectory.appendingPathComponent("build-context-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: context) }
            try FileManager.default.createDirectory(at: context.appendingPathComponent("sub"), withIntermediateDirectories: true)
            try Data("from the context\n".utf8).write(to: context.appendingPathComponent("sub/note.txt"))
            let target = "/tmp/wrenn-buildtest-\(UUID().uuidString.prefix(8))"
            defer { try? FileManager.default.removeItem(atPath: target) }
            let withFiles = try RecipeFile.parse("CONTEXT \(context.lastPathComponent)\nCOPY sub/note.txt \(target)/note.txt\nRUN cat \(target)/note.txt\n")
            let archive = BuildArchive(recipeDirectory: context.deletingLastPathComponent())
            let prepared = try #require(try await archive.make(for: withFiles) { _ in })
            defer { try? FileManager.default.removeItem(at: prepared.cleanup) }
            let copied = try await client.run(CreateBuildRequest(name: "from-cli-files", recipe: withFiles.recipe), archive: prepared.archive) { _ in }
            #expect(copied.status == .success, "\(copied.error ?? "") \(copied.logs.map(\.stderr))")
            #expect(copied.logs.first { $0.cmd.hasPrefix("RUN cat") }?.stdout == "from the context\n")
            #expect(try await BuildArchive(recipeDirectory: context).make(for: try RecipeFile.parse("RUN true")) { _ in } == nil)
            await #expect(throws: BuildArchive.Failure.self) {
                _ = try await BuildArchive(recipeDirectory: context, context: context.appendingPathComponent("missing")).make(for: withFiles) { _ in }
            }

            let refused = TemplateBuildClient(baseURL: "http://127.0.0.1:\(port)", email: "bob@builds.test", password: "correct horse")
            await #expect(throws: TemplateBuildClient.Failure.self) { _ = try await refused.run(CreateBuildRequest(name: "x", recipe: ["RUN true"])) { _ in } }
        }
    }

    final class Lines: @unchecked Sendable {
        private let lock = NSLock()
        private var lines: [String] = []
        func append(_ s: String) { lock.withLock { lines.append(s) } }
        var all: [String] { lock.withLock { lines } }
    }

    @Test(arguments: TestBackend.available)
    func unfinishedBuildsFailAfterARestart(_ backend: TestBackend) async throws {
        try await Self.withAdmin(backend) { s in
            // A build a previous process left running (its runner died with it).
            let id = PrefixedID.make(.build)
            try await s.cp.assembly.database.read { sql in
                try await sql.raw("""
                    INSERT INTO template_builds (id, name, base_template, recipe, vcpus, memory_mb, status, current_step, total_steps, created_at)
                    VALUES (\(bind: id), 'orphan', 'minimal', '["RUN true"]', 1, 512, 'running', 1, 1, 0)
                    """).run()
            }
            try await s.cp.assembly.services.builds.failInterrupted()
            let build = try await s.admin.get("/v1/admin/builds/\(id)").decode(Build.self)
            #expect(build.status == .failed)
            #expect(build.error?.contains("restarted") == true)
            #expect(build.completedAt != nil)
        }
    }
}
