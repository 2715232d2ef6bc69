import AsyncHTTPClient
import Foundation
import HummingbirdWSClient
import Logging
import NIOCore
import NIOFoundationCompat
import Synchronization
import WrennWire

/// Runs one template build: a capsule of the platform team created through the ordinary capsule path, the recipe's
/// steps executed in it through envd (each step's output and status persisted as it finishes and sent to the live
/// console), the optional healthcheck, then a snapshot of the capsule as a platform template. However it ends
/// (success, a failed step, a cancel, a shutdown) the capsule is destroyed and the uploaded archive deleted.
struct BuildRunner: Sendable {
    let database: Database
    let clock: any WallClock
    let capsules: CapsuleService
    let snapshots: SnapshotService
    let console: BuildConsole
    let logger: Logger

    /// What `run` needs beyond the stored row.
    struct Job: Sendable {
        var build: BuildRecord
        var recipe: Recipe
        var healthcheck: Healthcheck?
        /// The admin who submitted it; the build acts as them for the platform team.
        var principal: Principal
        var archive: URL?
    }

    /// One planned step: its log phase, its command as shown, and what it does.
    enum Action: Sendable {
        case extractArchive(URL)
        case recipe(Recipe.Step)
        case healthcheck(Healthcheck)
        case removeFiles

        /// RUN steps: long, and their output is worth watching as it comes.
        var streamsOutput: Bool {
            if case .recipe(.run) = self { true } else { false }
        }
    }

    struct Failure: Error { var message: String }

    /// The steps a build runs, in order (their count is the build's `total_steps`).
    static func plan(recipe: Recipe, healthcheck: Healthcheck?, archive: URL?) -> [(phase: String, cmd: String, action: Action)] {
        var steps: [(phase: String, cmd: String, action: Action)] = []
        if let archive { steps.append(("pre-build", "extract the uploaded archive", .extractArchive(archive))) }
        steps += recipe.lines.map { ("recipe", $0.text, .recipe($0.step)) }
        if archive != nil { steps.append(("post-build", "remove the uploaded files", .removeFiles)) }
        if let healthcheck { steps.append(("healthcheck", "HEALTHCHECK \(healthcheck.command)", .healthcheck(healthcheck))) }
        return steps
    }

    /// The shell state recipe steps change.
    struct State: Sendable {
        var env: [String: String] = [:]
        /// The capsule's own environment, for `$VAR` expansion only.
        var baseEnv: [String: String] = [:]
        var cwd = "/"
        var user = "root"
        var filesDir: String
    }

    func run(_ job: Job) async {
        let id = job.build.id
        defer { if let archive = job.archive { try? FileManager.default.removeItem(at: archive) } }
        let started = clock.now().millis
        guard (try? await database.read({ sql in try await BuildRepository.markRunning(id: id, at: started, sql) })) == true else {
            await publishFinal(id) // cancelled while queued
            return
        }
        await console.publish(id, BuildConsoleFrame(type: "build-status", status: .running))
        // The submitting admin acting for the platform team (its capsule, its template).
        var acting = job.principal
        acting.teamID = Migrations.platformTeamID
        acting.role = nil
        var capsuleID: String?
        var failure: String?
        do {
            let capsule = try await capsules.create(acting, CreateCapsuleRequest(
                template: job.build.baseTemplate, vcpus: Int(job.build.vcpus), memoryMB: Int(job.build.memoryMb), timeoutSec: 0))
            capsuleID = capsule.id
            try await database.read { sql in try await BuildRepository.setCapsule(id: id, capsule: capsule.id, sql) }
            try await waitRunning(acting, capsule.id)
            let (_, agent) = try await capsules.requireRunning(acting, id: capsule.id)
            var state = State(filesDir: "/tmp/wrenn-build-\(id)")
            state.baseEnv = await baseEnvironment(agent, capsule.id)
            for (index, planned) in Self.plan(recipe: job.recipe, healthcheck: job.healthcheck, archive: job.archive).enumerated() {
                try await checkStillWanted(id)
                let step = index + 1
                try await database.read { sql in try await BuildRepository.setCurrentStep(id: id, step: step, sql) }
                await console.publish(id, BuildConsoleFrame(type: "step-start", step: step, cmd: planned.cmd))
                let begin = ContinuousClock.now
                var outcome: ExecOutcome
                // RUN steps stream their output to the console as it is produced; other steps' output follows their end.
                var live: (@Sendable (String, String) async -> Void)?
                if planned.action.streamsOutput {
                    live = { [console] (stream: String, data: String) in
                        await console.publish(id, BuildConsoleFrame(type: "output", step: step, stream: stream, data: data))
                    }
                }
                do {
                    outcome = try await perform(planned.action, agent: agent, capsule: capsule.id, step: step, state: &state, live: live)
                } catch let error as Failure {
                    outcome = ExecOutcome(stdout: "", stderr: error.message, exit: -1)
                }
                let elapsed = Int((ContinuousClock.now - begin) / .milliseconds(1))
                let entry = BuildStepRecord(buildId: id, step: Int64(step), phase: planned.phase, cmd: planned.cmd, stdout: outcome.stdout,
                                            stderr: outcome.stderr, exitCode: Int64(outcome.exit), ok: outcome.ok ? 1 : 0, elapsedMs: Int64(elapsed))
                try await database.read { sql in try await BuildRepository.appendStep(entry, sql) }
                if live == nil || outcome.streamFailed {
                    if !outcome.stdout.isEmpty { await console.publish(id, .init(type: "output", step: step, stream: "stdout", data: outcome.stdout)) }
                    if !outcome.stderr.isEmpty { await console.publish(id, .init(type: "output", step: step, stream: "stderr", data: outcome.stderr)) }
                }
                await console.publish(id, .init(type: "step-end", step: step, exit: outcome.exit, ok: outcome.ok, elapsedMs: elapsed))
                guard outcome.ok else { throw Failure(message: "step \(step) (\(planned.cmd)) failed with exit code \(outcome.exit)") }
            }
            try await checkStillWanted(id)
            _ = try await snapshots.create(acting, CreateSnapshotRequest(sandboxID: capsule.id, name: job.build.name), overwrite: true)
        } catch let error as Failure {
            failure = error.message
        } catch is CancellationError {
            failure = "the build was stopped (cancelled, or the control plane shut down)"
        } catch let error as ServiceError {
            failure = error.message
        } catch {
            failure = "\(error)"
        }
        // Clean up even when this task was cancelled (a cancel or a shutdown): in a task that is not.
        let message = failure
        let cleanup = Task { [self, capsuleID] in
            if let capsuleID { try? await capsules.destroy(acting, id: capsuleID) }
            let now = clock.now().millis
            _ = try? await database.read { sql in
                try await BuildRepository.finish(id: id, status: message == nil ? "success" : "failed", error: message, at: now, sql)
            }
            if let message { logger.info("template build ended", metadata: ["build": "\(id)", "outcome": "\(message)"]) }
            await publishFinal(id)
        }
        await cleanup.value
    }

    /// Publishes the build's stored final status (what a cancel or this runner decided), ending the console.
    func publishFinal(_ id: String) async {
        let record = try? await database.read { sql in try await BuildRepository.find(id: id, sql) }
        let status = record.flatMap { BuildStatus(rawValue: $0.status) } ?? .failed
        await console.publish(id, BuildConsoleFrame(type: "build-status", status: status.isFinal ? status : .failed, error: record?.error))
    }

    /// Throws when the build was cancelled (its row is no longer `running`) or its task was.
    func checkStillWanted(_ id: String) async throws {
        try Task.checkCancellation()
        let status = try await database.read { sql in try await BuildRepository.find(id: id, sql) }?.status
        guard status == BuildStatus.running.rawValue else { throw CancellationError() }
    }

    func waitRunning(_ principal: Principal, _ id: String) async throws {
        let deadline = ContinuousClock.now + .seconds(600)
        while true {
            let capsule = try await capsules.get(principal, id: id)
            switch capsule.status {
            case .running: return
            case .starting, .pending: break
            default: throw Failure(message: "the build capsule \(id) is \(capsule.status.rawValue): \(capsule.metadata?["error"] ?? "it did not start")")
            }
            guard ContinuousClock.now < deadline else { throw Failure(message: "the build capsule did not start within 10 minutes") }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    // MARK: Steps

    struct ExecOutcome: Sendable {
        var stdout: String
        var stderr: String
        var exit: Int
        /// The step's output could not be streamed (it carries the reason instead): publish it at the end.
        var streamFailed = false
        var ok: Bool { exit == 0 }
    }

    func perform(_ action: Action, agent: AgentClient, capsule: String, step: Int, state: inout State,
                 live: (@Sendable (String, String) async -> Void)? = nil) async throws -> ExecOutcome {
        let q = Self.quote
        switch action {
        case .extractArchive(let archive):
            let remote = "\(state.filesDir).archive"
            try await upload(archive, to: remote, agent: agent, capsule: capsule)
            return try await shell("mkdir -p \(q(state.filesDir)) && tar -xf \(q(remote)) -C \(q(state.filesDir)) && rm -f \(q(remote))",
                                   as: "root", state: state, agent: agent, capsule: capsule, timeout: 600)
        case .removeFiles:
            return try await shell("rm -rf \(q(state.filesDir))", as: "root", state: state, agent: agent, capsule: capsule, timeout: 600)
        case .healthcheck(let check):
            return try await healthcheck(check, state: state, agent: agent, capsule: capsule)
        case .recipe(let instruction):
            switch instruction {
            case .run(let command, let timeout):
                let seconds = timeout ?? Recipe.defaultRunTimeout
                guard let live else {
                    return try await shell(command, as: state.user, state: state, agent: agent, capsule: capsule, timeout: seconds)
                }
                return try await streamedShell(command, as: state.user, state: state, agent: agent, capsule: capsule, timeout: seconds, live: live)
            case .start(let command):
                var request = ExecRequest(cmd: "/bin/sh", args: ["-c", command], background: true, tag: "build-start-\(step)",
                                          envs: state.env, cwd: state.cwd, user: state.user)
                request.timeoutSec = nil
                let (status, body) = try await exec(request, agent: agent, capsule: capsule, deadline: .seconds(60))
                guard (200..<300).contains(status) else { return ExecOutcome(stdout: "", stderr: Self.errorText(body), exit: -1) }
                return ExecOutcome(stdout: String(decoding: body, as: UTF8.self) + "\n", stderr: "", exit: 0)
            case .env(let key, let value):
                let expanded = Recipe.expand(value, env: state.baseEnv.merging(state.env) { $1 })
                state.env[key] = expanded
                return ExecOutcome(stdout: "\(key)=\(expanded)\n", stderr: "", exit: 0)
            case .workdir(let path):
                let owner = state.user == "root" ? "" : " && chown \(q(state.user)) \(q(path))"
                let outcome = try await shell("mkdir -p \(q(path))\(owner)", as: "root", state: state, agent: agent, capsule: capsule, timeout: 60)
                if outcome.ok { state.cwd = path }
                return outcome
            case .user(let name):
                let create = """
                    id -u \(q(name)) >/dev/null 2>&1 || { (useradd -m -s /bin/bash \(q(name)) || adduser --disabled-password --gecos '' \(q(name))) \
                    && mkdir -p /etc/sudoers.d && echo \(q("\(name) ALL=(ALL) NOPASSWD:ALL")) > /etc/sudoers.d/\(q(name)) \
                    && chmod 0440 /etc/sudoers.d/\(q(name)); }
                    """
                let outcome = try await shell(create, as: "root", state: state, agent: agent, capsule: capsule, timeout: 120)
                if outcome.ok { state.user = name }
                return outcome
            case .copy(let sources, let destination):
                let directory = destination.hasSuffix("/") || sources.count > 1
                let target = destination.hasPrefix("/") ? destination : "\(state.cwd)/\(destination)"
                let make = directory ? "mkdir -p \(q(target))" : "mkdir -p \"$(dirname \(q(target)))\""
                let owner = state.user == "root" ? "" : " && chown -R \(q(state.user)) \(q(target))"
                let command = "cd \(q(state.filesDir)) && \(make) && cp -r \(sources.map(q).joined(separator: " ")) \(q(target))\(owner)"
                return try await shell(command, as: "root", state: state, agent: agent, capsule: capsule, timeout: 600)
            }
        }
    }

    /// Runs the healthcheck until it passes, its retries are used up, or `Healthcheck.maxWait` passes.
    func healthcheck(_ check: Healthcheck, state: State, agent: AgentClient, capsule: String) async throws -> ExecOutcome {
        let start = ContinuousClock.now
        var failures = 0
        var last = ExecOutcome(stdout: "", stderr: "", exit: -1)
        while true {
            last = try await shell(check.command, as: state.user, state: state, agent: agent, capsule: capsule, timeout: Int(check.timeout.rounded(.up)))
            if last.ok { return last }
            let waited = (ContinuousClock.now - start) / .seconds(1)
            if waited >= check.startPeriod { failures += 1 }
            if check.retries > 0, failures >= check.retries { return last }
            if waited >= Healthcheck.maxWait { return last }
            try await Task.sleep(for: .milliseconds(Int(check.interval * 1000)))
        }
    }

    /// `/bin/sh -c command` in the capsule as `user`, with the recipe's environment and working directory.
    func shell(_ command: String, as user: String, state: State, agent: AgentClient, capsule: String, timeout: Int) async throws -> ExecOutcome {
        let request = ExecRequest(cmd: "/bin/sh", args: ["-c", command], timeoutSec: timeout, envs: state.env, cwd: state.cwd, user: user)
        let (status, body) = try await exec(request, agent: agent, capsule: capsule, deadline: .seconds(Int64(timeout) + 30))
        guard (200..<300).contains(status), let result = try? WireCoding.makeDecoder().decode(ExecResponse.self, from: body) else {
            return ExecOutcome(stdout: "", stderr: Self.errorText(body), exit: -1)
        }
        func text(_ s: String) -> String {
            result.encoding == .base64 ? String(decoding: Data(base64Encoded: s) ?? Data(), as: UTF8.self) : s
        }
        var stderr = text(result.stderr)
        if result.timedOut == true { stderr += "\n(timed out after \(timeout) s)" }
        return ExecOutcome(stdout: text(result.stdout), stderr: stderr, exit: Int(result.exitCode))
    }

    /// `/bin/sh -c command` like `shell`, through envd's exec stream (WebSocket, via the agent): each chunk of output
    /// goes to `live` as the command produces it, and is kept for the step's log (up to `logLimit` per stream).
    func streamedShell(_ command: String, as user: String, state: State, agent: AgentClient, capsule: String, timeout: Int,
                       live: @escaping @Sendable (String, String) async -> Void) async throws -> ExecOutcome {
        let start = ExecStreamClientFrame(type: .start, cmd: "/bin/sh", args: ["-c", command], envs: state.env, cwd: state.cwd,
                                          user: user, timeoutSec: timeout)
        let first = String(decoding: try WireCoding.makeEncoder().encode(start), as: UTF8.self)
        let result = Mutex(StreamedOutcome())
        do {
            try await agent.connectWebSocket("/v1/capsules/\(capsule)/envd/exec/stream", logger: logger) { inbound, outbound, _ in
                try await outbound.write(.text(first))
                let decoder = WireCoding.makeDecoder()
                for try await message in inbound.messages(maxSize: Self.maxFrame) {
                    guard case .text(let text) = message, let frame = try? decoder.decode(ProcessStreamFrame.self, from: Data(text.utf8)) else { continue }
                    switch frame.type {
                    case .stdout, .stderr:
                        let raw = frame.data ?? ""
                        let data = frame.encoding == .base64 ? String(decoding: Data(base64Encoded: raw) ?? Data(), as: UTF8.self) : raw
                        result.withLock { $0.append(frame.type == .stdout, data) }
                        await live(frame.type.rawValue, data)
                    case .exit:
                        result.withLock { $0.exit = Int(frame.exitCode ?? -1); $0.timedOut = frame.timedOut == true }
                        return
                    case .error:
                        result.withLock { $0.failure = frame.data ?? "the exec stream failed" }
                        return
                    case .start:
                        break
                    }
                }
            }
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            result.withLock { $0.failure = $0.failure ?? "the build capsule's exec stream failed: \(error)" }
        }
        return result.withLock { outcome in
            var stderr = outcome.stderr
            if outcome.timedOut { stderr += "\n(timed out after \(timeout) s)" }
            guard let exit = outcome.exit else {
                let reason = outcome.failure ?? "the exec stream ended without the command's exit status"
                return ExecOutcome(stdout: outcome.stdout, stderr: stderr.isEmpty ? reason : stderr + "\n" + reason, exit: -1, streamFailed: true)
            }
            return ExecOutcome(stdout: outcome.stdout, stderr: stderr, exit: exit)
        }
    }

    static let maxFrame = 16 << 20
    /// Output kept per stream in a step's log; the console gets all of it.
    static let logLimit = 4 << 20

    /// What a streamed step produced so far.
    struct StreamedOutcome {
        var stdout = ""
        var stderr = ""
        var exit: Int?
        var timedOut = false
        var failure: String?
        var truncated = false

        mutating func append(_ isStdout: Bool, _ data: String) {
            let current = isStdout ? stdout.utf8.count : stderr.utf8.count
            guard current + data.utf8.count <= BuildRunner.logLimit else {
                if !truncated { truncated = true; stderr += "\n[output beyond \(BuildRunner.logLimit >> 20) MiB per stream is not kept in the log]\n" }
                return
            }
            if isStdout { stdout += data } else { stderr += data }
        }
    }

    /// One exec call to the capsule's envd through its agent: the HTTP status and body.
    func exec(_ request: ExecRequest, agent: AgentClient, capsule: String, deadline: Duration) async throws -> (Int, Data) {
        let response: HTTPClientResponse
        do {
            response = try await agent.envd(.POST, capsule: capsule, "/exec", contentType: "application/json",
                                            body: .bytes(ByteBuffer(data: try WireCoding.makeEncoder().encode(request))), deadline: deadline)
        } catch {
            throw Failure(message: "the build capsule's host agent is unreachable: \(error)")
        }
        let body = try await response.body.collect(upTo: 64 << 20)
        return (Int(response.status.code), Data(buffer: body))
    }

    /// Streams the uploaded archive to `path` in the capsule (envd's raw streamed write).
    func upload(_ file: URL, to path: String, agent: AgentClient, capsule: String) async throws {
        guard let escaped = path.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "/-_.")))
        else { throw Failure(message: "bad archive path") }
        let response = try await agent.envd(.POST, capsule: capsule, "/files/write?path=\(escaped)", contentType: "application/octet-stream",
                                            body: .stream(try FileChunks.stream(file), length: .known(FileChunks.size(file))),
                                            deadline: .seconds(600))
        let body = try await response.body.collect(upTo: 1 << 20)
        guard (200..<300).contains(response.status.code) else {
            throw Failure(message: "uploading the archive failed: \(Self.errorText(Data(buffer: body)))")
        }
    }

    /// The capsule's environment as root sees it (`env`), for `$VAR` expansion in ENV lines.
    func baseEnvironment(_ agent: AgentClient, _ capsule: String) async -> [String: String] {
        let request = ExecRequest(cmd: "/usr/bin/env", timeoutSec: 10, user: "root")
        guard let (status, body) = try? await exec(request, agent: agent, capsule: capsule, deadline: .seconds(30)), status == 200,
              let result = try? WireCoding.makeDecoder().decode(ExecResponse.self, from: body), result.encoding == .utf8 else { return [:] }
        var env: [String: String] = [:]
        for line in result.stdout.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            env[String(line[..<eq])] = String(line[line.index(after: eq)...])
        }
        return env
    }

    static func errorText(_ body: Data) -> String {
        (try? JSONDecoder().decode(ErrorEnvelope.self, from: body))?.error.message ?? String(decoding: body.prefix(4096), as: UTF8.self)
    }

    /// `text` as one single-quoted shell word.
    static func quote(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: #"'\''"#) + "'"
    }
}
