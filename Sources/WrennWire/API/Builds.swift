import Foundation

// Wire types of the admin template builds (`/v1/admin/builds…`, reference §10.2).

/// A build's state: `pending` → `running` → `success` | `failed` | `cancelled`.
public enum BuildStatus: String, Codable, Sendable, CaseIterable {
    case pending, running, success, failed, cancelled

    /// True once the build can no longer change.
    public var isFinal: Bool { self == .success || self == .failed || self == .cancelled }
}

/// `POST /v1/admin/builds` (JSON body, or the multipart part `config` beside an optional `archive`).
public struct CreateBuildRequest: Codable, Sendable, Equatable {
    /// The platform template the build produces.
    public var name: String
    /// The template the build capsule starts from (default `minimal`).
    public var baseTemplate: String?
    /// Recipe lines (`RUN`, `ENV`, `WORKDIR`, `USER`, `COPY`, `START`; `#` comments and blank lines are skipped).
    public var recipe: [String]
    /// `[--interval=3s] [--timeout=10s] [--start-period=0s] [--retries=0] <cmd>`: must pass before the snapshot.
    public var healthcheck: String?
    public var vcpus: Int?
    public var memoryMB: Int?

    public init(name: String, baseTemplate: String? = nil, recipe: [String], healthcheck: String? = nil, vcpus: Int? = nil, memoryMB: Int? = nil) {
        self.name = name; self.baseTemplate = baseTemplate; self.recipe = recipe; self.healthcheck = healthcheck
        self.vcpus = vcpus; self.memoryMB = memoryMB
    }

    enum CodingKeys: String, CodingKey {
        case name, recipe, healthcheck, vcpus
        case baseTemplate = "base_template", memoryMB = "memory_mb"
    }
}

/// One finished step of a build (persisted as it finishes).
public struct BuildLogEntry: Codable, Sendable, Equatable {
    /// 1-based step number.
    public var step: Int
    /// `recipe` for recipe lines, `healthcheck` for the final check.
    public var phase: String
    public var cmd: String
    public var stdout: String
    public var stderr: String
    public var exit: Int
    public var ok: Bool
    public var elapsedMs: Int

    public init(step: Int, phase: String, cmd: String, stdout: String, stderr: String, exit: Int, ok: Bool, elapsedMs: Int) {
        self.step = step; self.phase = phase; self.cmd = cmd; self.stdout = stdout; self.stderr = stderr
        self.exit = exit; self.ok = ok; self.elapsedMs = elapsedMs
    }

    enum CodingKeys: String, CodingKey {
        case step, phase, cmd, stdout, stderr, exit, ok
        case elapsedMs = "elapsed_ms"
    }
}

/// A build as the admin API returns it.
public struct Build: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var baseTemplate: String
    public var recipe: [String]
    public var healthcheck: String?
    public var vcpus: Int
    public var memoryMB: Int
    public var status: BuildStatus
    /// The step running now (or the last one run); 0 before the first.
    public var currentStep: Int
    public var totalSteps: Int
    public var logs: [BuildLogEntry]
    public var error: String?
    /// The capsule the build runs in.
    public var sandboxId: String?
    /// Whether the uploaded archive (for `COPY`) came with the build.
    public var hasArchive: Bool
    public var createdAt: Date
    public var startedAt: Date?
    public var completedAt: Date?

    public init(id: String, name: String, baseTemplate: String, recipe: [String], healthcheck: String?, vcpus: Int, memoryMB: Int,
                status: BuildStatus, currentStep: Int, totalSteps: Int, logs: [BuildLogEntry], error: String?, sandboxId: String?,
                hasArchive: Bool, createdAt: Date, startedAt: Date?, completedAt: Date?) {
        self.id = id; self.name = name; self.baseTemplate = baseTemplate; self.recipe = recipe; self.healthcheck = healthcheck
        self.vcpus = vcpus; self.memoryMB = memoryMB; self.status = status; self.currentStep = currentStep; self.totalSteps = totalSteps
        self.logs = logs; self.error = error; self.sandboxId = sandboxId; self.hasArchive = hasArchive
        self.createdAt = createdAt; self.startedAt = startedAt; self.completedAt = completedAt
    }

    enum CodingKeys: String, CodingKey {
        case id, name, recipe, healthcheck, vcpus, status, logs, error
        case baseTemplate = "base_template", memoryMB = "memory_mb", currentStep = "current_step", totalSteps = "total_steps"
        case sandboxId = "sandbox_id", hasArchive = "has_archive", createdAt = "created_at", startedAt = "started_at"
        case completedAt = "completed_at"
    }
}

/// A frame of the build console (`GET /v1/admin/builds/{id}/stream`, WebSocket, text frames of JSON):
/// `step-start` {step, cmd}, `output` {step, stream: stdout|stderr, data}, `step-end` {step, exit, ok, elapsed_ms},
/// `build-status` {status, error?}. The socket closes after the final `build-status`.
public struct BuildConsoleFrame: Codable, Sendable, Equatable {
    public var type: String
    public var step: Int?
    public var cmd: String?
    public var stream: String?
    public var data: String?
    public var exit: Int?
    public var ok: Bool?
    public var elapsedMs: Int?
    public var status: BuildStatus?
    public var error: String?

    public init(type: String, step: Int? = nil, cmd: String? = nil, stream: String? = nil, data: String? = nil, exit: Int? = nil,
                ok: Bool? = nil, elapsedMs: Int? = nil, status: BuildStatus? = nil, error: String? = nil) {
        self.type = type; self.step = step; self.cmd = cmd; self.stream = stream; self.data = data; self.exit = exit
        self.ok = ok; self.elapsedMs = elapsedMs; self.status = status; self.error = error
    }

    enum CodingKeys: String, CodingKey {
        case type, step, cmd, stream, data, exit, ok, status, error
        case elapsedMs = "elapsed_ms"
    }
}
