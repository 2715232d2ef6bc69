import Foundation
import Logging
import SQLKit
import WrennWire

/// Admin template builds (reference §10.2): submit, list, get, cancel, and the live console's frames. A build runs
/// in the background (`BuildWorker`, `BuildRunner`) and, on success, leaves a platform template (team zero, visible
/// to every team) named after it. Builds do not survive a control plane restart: `failInterrupted` ends those it
/// left unfinished as `failed`, with the reason, and destroys their capsules.
public struct BuildService: Sendable {
    let database: Database
    let clock: any WallClock
    let audit: AuditService
    let capsules: CapsuleService
    let worker: BuildWorker
    let console: BuildConsole
    let runner: BuildRunner
    /// Uploaded archives wait here for their build (`<data>/builds/<id>.archive`).
    let archiveDirectory: URL
    let logger: Logger

    static let archiveLimit: Int64 = 100 * 1024 * 1024
    static let restartReason = "the control plane restarted while the build was unfinished; submit it again"

    init(database: Database, clock: any WallClock, audit: AuditService, capsules: CapsuleService, snapshots: SnapshotService,
         worker: BuildWorker, dataDirectory: String, logger: Logger) {
        self.database = database
        self.clock = clock
        self.audit = audit
        self.capsules = capsules
        self.worker = worker
        let console = BuildConsole()
        self.console = console
        self.runner = BuildRunner(database: database, clock: clock, capsules: capsules, snapshots: snapshots, console: console, logger: logger)
        self.archiveDirectory = URL(fileURLWithPath: dataDirectory).appendingPathComponent("builds")
        self.logger = logger
    }

    func requireAdmin(_ principal: Principal) throws {
        guard principal.isAdmin else { throw ServiceError.forbidden("this operation is for platform admins") }
    }

    /// Validates and queues a build (202). `archive` is a file the caller wrote (tar or tar.gz, for COPY); it is
    /// moved into the data directory, or deleted if the build is refused.
    public func submit(_ principal: Principal, _ request: CreateBuildRequest, archive: URL? = nil) async throws -> Build {
        var keepArchive = false
        defer { if let archive, !keepArchive { try? FileManager.default.removeItem(at: archive) } }
        try requireAdmin(principal)
        _ = try principal.requireUser()
        let name = request.name.trimmingCharacters(in: .whitespaces)
        guard TemplateRules.isSafeName(name) else {
            throw ServiceError.invalid("name: 1–64 characters of letters, digits, '.', '_' or '-', starting with a letter or digit")
        }
        let base = request.baseTemplate?.trimmingCharacters(in: .whitespaces).nilIfEmpty ?? CapsuleService.defaultTemplate
        guard TemplateRules.isSafeName(base) else { throw ServiceError.invalid("base_template: not a valid template name") }
        let vcpus = request.vcpus ?? 1
        let memory = request.memoryMB ?? 512
        guard CapsuleService.limits.vcpus.contains(vcpus) else { throw ServiceError.invalid("vcpus: must be 1–16") }
        guard CapsuleService.limits.memoryMB.contains(memory) else { throw ServiceError.invalid("memory_mb: must be 128–65536") }
        let recipe: Recipe
        let healthcheck: Healthcheck?
        do {
            recipe = try Recipe.parse(request.recipe)
            healthcheck = try request.healthcheck?.trimmingCharacters(in: .whitespaces).nilIfEmpty.map { text throws(Recipe.ParseError) in
                try Healthcheck.parse(text)
            }
        } catch {
            throw ServiceError.invalid(error.description)
        }
        if archive == nil, recipe.lines.contains(where: { if case .copy = $0.step { true } else { false } }) {
            throw ServiceError.invalid("COPY needs an uploaded archive (multipart part \"archive\")")
        }
        let platform = Migrations.platformTeamID
        let (baseTemplate, existing) = try await database.read { sql in
            (try await TemplateRepository.visible(name: base, team: platform, sql), try await TemplateRepository.visible(name: name, team: platform, sql))
        }
        guard baseTemplate != nil else { throw ServiceError(.notFound, "not_found", "base template \"\(base)\" not found") }
        if let existing, existing.type != "snapshot" {
            throw ServiceError.conflict("name_reserved", "\"\(name)\" is a base image; a build cannot replace it")
        }
        let id = PrefixedID.make(.build)
        var stored: URL?
        if let archive {
            try FileManager.default.createDirectory(at: archiveDirectory, withIntermediateDirectories: true)
            let target = archiveDirectory.appendingPathComponent("\(id).archive")
            try FileManager.default.moveItem(at: archive, to: target)
            stored = target
            keepArchive = true
        }
        let lines = (try? String(decoding: JSONEncoder().encode(request.recipe), as: UTF8.self)) ?? "[]"
        let total = BuildRunner.plan(recipe: recipe, healthcheck: healthcheck, archive: stored).count
        let record = BuildRecord(id: id, name: name, baseTemplate: base, recipe: lines, healthcheck: request.healthcheck?.nilIfEmpty,
                                 vcpus: Int64(vcpus), memoryMb: Int64(memory), status: BuildStatus.pending.rawValue, currentStep: 0,
                                 totalSteps: Int64(total), error: nil, sandboxId: nil, hasArchive: stored == nil ? 0 : 1,
                                 createdBy: principal.userID, createdAt: clock.now().millis, startedAt: nil, completedAt: nil)
        do {
            try await database.transaction { sql in
                try await BuildRepository.insert(record, sql)
                try await audit.record(.init(team: platform, actor: principal.actor, resourceType: "build", resourceID: id, action: "build_create",
                                             scope: "admin", metadata: ["name": name, "base_template": base]), sql)
            }
        } catch {
            if let stored { try? FileManager.default.removeItem(at: stored) }
            throw error
        }
        await console.open(id)
        let job = BuildRunner.Job(build: record, recipe: recipe, healthcheck: healthcheck, principal: principal, archive: stored)
        let runner = runner
        worker.submit(id) { await runner.run(job) }
        return Self.build(record, steps: [])
    }

    public func list(_ principal: Principal) async throws -> [Build] {
        try requireAdmin(principal)
        return try await database.read { sql in try await BuildRepository.list(limit: 200, sql) }.map { Self.build($0, steps: []) }
    }

    public func get(_ principal: Principal, id: String) async throws -> Build {
        try requireAdmin(principal)
        let (record, steps) = try await load(id)
        return Self.build(record, steps: steps)
    }

    func load(_ id: String) async throws -> (BuildRecord, [BuildStepRecord]) {
        let found = try await database.read { sql -> (BuildRecord, [BuildStepRecord])? in
            guard let record = try await BuildRepository.find(id: id, sql) else { return nil }
            return (record, try await BuildRepository.steps(build: id, sql))
        }
        guard let found else { throw ServiceError.notFound("build") }
        return found
    }

    /// Cancels a pending or running build (204): it ends `cancelled` and its capsule is destroyed. A finished build
    /// is 409 `invalid_state`.
    public func cancel(_ principal: Principal, id: String) async throws {
        try requireAdmin(principal)
        let now = clock.now().millis
        let (record, _) = try await load(id)
        let moved = try await database.transaction { sql -> Bool in
            guard try await BuildRepository.finish(id: id, status: BuildStatus.cancelled.rawValue, error: "cancelled by \(principal.email)",
                                                   at: now, sql) else { return false }
            try await audit.record(.init(team: Migrations.platformTeamID, actor: principal.actor, resourceType: "build", resourceID: id,
                                         action: "build_cancel", scope: "admin", metadata: ["name": record.name]), sql)
            return true
        }
        guard moved else { throw ServiceError.conflict("invalid_state", "build \(id) is \(record.status)") }
        await worker.cancel(id)
    }

    /// The console of a build: its frames so far and, while it is unfinished, the live tail (nil once finished).
    func console(_ principal: Principal, id: String) async throws -> (history: [BuildConsoleFrame], live: AsyncStream<BuildConsoleFrame>?) {
        try requireAdmin(principal)
        let (record, steps) = try await load(id)
        if let live = await console.subscribe(id) { return (live.history, live.live) }
        // Finished (or left by a previous process): replay the stored steps and the final status.
        var frames: [BuildConsoleFrame] = []
        for step in steps {
            let n = Int(step.step)
            frames.append(.init(type: "step-start", step: n, cmd: step.cmd))
            if !step.stdout.isEmpty { frames.append(.init(type: "output", step: n, stream: "stdout", data: step.stdout)) }
            if !step.stderr.isEmpty { frames.append(.init(type: "output", step: n, stream: "stderr", data: step.stderr)) }
            frames.append(.init(type: "step-end", step: n, exit: Int(step.exitCode), ok: step.ok != 0, elapsedMs: Int(step.elapsedMs)))
        }
        let status = BuildStatus(rawValue: record.status) ?? .failed
        frames.append(.init(type: "build-status", status: status, error: record.error))
        return (frames, nil)
    }

    /// At start: builds a previous process left pending or running end `failed` (they cannot resume) and their
    /// capsules are destroyed.
    public func failInterrupted() async throws {
        let now = clock.now().millis
        let leftover = try await database.transaction { sql in try await BuildRepository.failUnfinished(reason: Self.restartReason, at: now, sql) }
        let system = Principal(credential: .apiKey(id: "system", name: "build recovery"), userID: nil, email: "system", name: "system",
                               isAdmin: true, teamID: Migrations.platformTeamID, role: nil)
        for capsule in leftover {
            try? await capsules.destroy(system, id: capsule)
        }
        if !leftover.isEmpty { logger.warning("builds interrupted by a restart marked failed", metadata: ["capsules": "\(leftover)"]) }
    }

    static func build(_ r: BuildRecord, steps: [BuildStepRecord]) -> Build {
        let recipe = (try? JSONDecoder().decode([String].self, from: Data(r.recipe.utf8))) ?? []
        return Build(id: r.id, name: r.name, baseTemplate: r.baseTemplate, recipe: recipe, healthcheck: r.healthcheck, vcpus: Int(r.vcpus),
                     memoryMB: Int(r.memoryMb), status: BuildStatus(rawValue: r.status) ?? .failed, currentStep: Int(r.currentStep),
                     totalSteps: Int(r.totalSteps),
                     logs: steps.map {
                         BuildLogEntry(step: Int($0.step), phase: $0.phase, cmd: $0.cmd, stdout: $0.stdout, stderr: $0.stderr,
                                       exit: Int($0.exitCode), ok: $0.ok != 0, elapsedMs: Int($0.elapsedMs))
                     },
                     error: r.error, sandboxId: r.sandboxId, hasArchive: r.hasArchive != 0, createdAt: Date(millis: r.createdAt),
                     startedAt: r.startedAt.map(Date.init(millis:)), completedAt: r.completedAt.map(Date.init(millis:)))
    }
}
