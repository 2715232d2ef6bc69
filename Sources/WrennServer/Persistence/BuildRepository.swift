import SQLKit

/// A row of `template_builds`: one admin template build. Recipe lines are a JSON array of strings.
struct BuildRecord: Codable, Sendable {
    var id: String
    var name: String
    var baseTemplate: String
    var recipe: String
    var healthcheck: String?
    var vcpus: Int64
    var memoryMb: Int64
    var status: String
    var currentStep: Int64
    var totalSteps: Int64
    var error: String?
    var sandboxId: String?
    var hasArchive: Int64
    var createdBy: String?
    var createdAt: Int64
    var startedAt: Int64?
    var completedAt: Int64?
}

/// A row of `template_build_steps`: one finished step of a build, written as it finishes.
struct BuildStepRecord: Codable, Sendable {
    var buildId: String
    var step: Int64
    var phase: String
    var cmd: String
    var stdout: String
    var stderr: String
    var exitCode: Int64
    var ok: Int64
    var elapsedMs: Int64
}

/// SQL for template builds and their step logs.
enum BuildRepository {
    @Sendable static func schema(_ kind: DatabaseKind) -> [String] {
        [
            """
            CREATE TABLE template_builds (
                id TEXT PRIMARY KEY, name TEXT NOT NULL, base_template TEXT NOT NULL, recipe TEXT NOT NULL, healthcheck TEXT,
                vcpus BIGINT NOT NULL, memory_mb BIGINT NOT NULL, status TEXT NOT NULL, current_step BIGINT NOT NULL DEFAULT 0,
                total_steps BIGINT NOT NULL, error TEXT, sandbox_id TEXT, has_archive BIGINT NOT NULL DEFAULT 0, created_by TEXT,
                created_at BIGINT NOT NULL, started_at BIGINT, completed_at BIGINT)
            """,
            "CREATE INDEX template_builds_status ON template_builds (status)",
            """
            CREATE TABLE template_build_steps (
                build_id TEXT NOT NULL REFERENCES template_builds(id) ON DELETE CASCADE, step BIGINT NOT NULL, phase TEXT NOT NULL,
                cmd TEXT NOT NULL, stdout TEXT NOT NULL, stderr TEXT NOT NULL, exit_code BIGINT NOT NULL, ok BIGINT NOT NULL,
                elapsed_ms BIGINT NOT NULL, PRIMARY KEY (build_id, step))
            """,
        ]
    }

    static let columns = """
        id, name, base_template, recipe, healthcheck, vcpus, memory_mb, status, current_step, total_steps, error, sandbox_id,
        has_archive, created_by, created_at, started_at, completed_at
        """

    static func insert(_ b: BuildRecord, _ sql: any SQLDatabase) async throws {
        try await sql.raw("""
            INSERT INTO template_builds (\(unsafeRaw: columns)) VALUES (\(bind: b.id), \(bind: b.name), \(bind: b.baseTemplate),
            \(bind: b.recipe), \(bind: b.healthcheck), \(bind: b.vcpus), \(bind: b.memoryMb), \(bind: b.status), \(bind: b.currentStep),
            \(bind: b.totalSteps), \(bind: b.error), \(bind: b.sandboxId), \(bind: b.hasArchive), \(bind: b.createdBy), \(bind: b.createdAt),
            \(bind: b.startedAt), \(bind: b.completedAt))
            """).run()
    }

    static func find(id: String, _ sql: any SQLDatabase) async throws -> BuildRecord? {
        try await sql.raw("SELECT \(unsafeRaw: columns) FROM template_builds WHERE id = \(bind: id)").row(BuildRecord.self)
    }

    /// Newest first.
    static func list(limit: Int, _ sql: any SQLDatabase) async throws -> [BuildRecord] {
        try await sql.raw("SELECT \(unsafeRaw: columns) FROM template_builds ORDER BY created_at DESC, id DESC LIMIT \(bind: limit)")
            .rows(BuildRecord.self)
    }

    static func steps(build: String, _ sql: any SQLDatabase) async throws -> [BuildStepRecord] {
        try await sql.raw("""
            SELECT build_id, step, phase, cmd, stdout, stderr, exit_code, ok, elapsed_ms FROM template_build_steps
            WHERE build_id = \(bind: build) ORDER BY step
            """).rows(BuildStepRecord.self)
    }

    static func appendStep(_ s: BuildStepRecord, _ sql: any SQLDatabase) async throws {
        try await sql.raw("""
            INSERT INTO template_build_steps (build_id, step, phase, cmd, stdout, stderr, exit_code, ok, elapsed_ms)
            VALUES (\(bind: s.buildId), \(bind: s.step), \(bind: s.phase), \(bind: s.cmd), \(bind: s.stdout), \(bind: s.stderr),
            \(bind: s.exitCode), \(bind: s.ok), \(bind: s.elapsedMs))
            """).run()
    }

    /// pending → running, with the build capsule; false when the build is no longer pending (cancelled).
    static func markRunning(id: String, at: Int64, _ sql: any SQLDatabase) async throws -> Bool {
        let rows = try await sql.raw("""
            UPDATE template_builds SET status = 'running', started_at = \(bind: at) WHERE id = \(bind: id) AND status = 'pending'
            RETURNING id
            """).all()
        return !rows.isEmpty
    }

    static func setCapsule(id: String, capsule: String, _ sql: any SQLDatabase) async throws {
        try await sql.raw("UPDATE template_builds SET sandbox_id = \(bind: capsule) WHERE id = \(bind: id)").run()
    }

    static func setCurrentStep(id: String, step: Int, _ sql: any SQLDatabase) async throws {
        try await sql.raw("UPDATE template_builds SET current_step = \(bind: Int64(step)) WHERE id = \(bind: id)").run()
    }

    /// Moves an unfinished build to its final `status`; false when it had already finished (a cancel won the race).
    static func finish(id: String, status: String, error: String?, at: Int64, _ sql: any SQLDatabase) async throws -> Bool {
        let rows = try await sql.raw("""
            UPDATE template_builds SET status = \(bind: status), error = \(bind: error), completed_at = \(bind: at)
            WHERE id = \(bind: id) AND status IN ('pending', 'running') RETURNING id
            """).all()
        return !rows.isEmpty
    }

    /// Builds left pending or running by a control plane that stopped: they cannot resume (the runner's state was in
    /// that process), so they end `failed`. Returns their capsules, to destroy.
    static func failUnfinished(reason: String, at: Int64, _ sql: any SQLDatabase) async throws -> [String] {
        let capsules = try await sql.raw("""
            SELECT sandbox_id FROM template_builds WHERE status IN ('pending', 'running') AND sandbox_id IS NOT NULL
            """).all(decodingColumn: "sandbox_id", as: String.self)
        try await sql.raw("""
            UPDATE template_builds SET status = 'failed', error = \(bind: reason), completed_at = \(bind: at)
            WHERE status IN ('pending', 'running')
            """).run()
        return capsules
    }
}
