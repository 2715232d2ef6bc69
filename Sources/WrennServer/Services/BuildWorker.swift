import Foundation
import ServiceLifecycle

/// Runs template builds as child tasks of one service, so a graceful shutdown cancels the builds in flight (each
/// then ends `failed` and destroys its capsule) instead of abandoning them. A build can be cancelled by id.
public final class BuildWorker: Service, Sendable {
    typealias Job = @Sendable () async -> Void
    private let jobs: AsyncStream<(String, Job)>
    private let continuation: AsyncStream<(String, Job)>.Continuation
    private let running = RunningBuilds()

    public init() {
        (jobs, continuation) = AsyncStream.makeStream(of: (String, Job).self)
    }

    func submit(_ build: String, _ job: @escaping Job) {
        continuation.yield((build, job))
    }

    /// Cancels the build's task if it has started (a queued build notices its cancelled status when it starts).
    func cancel(_ build: String) async {
        await running.cancel(build)
    }

    public func run() async throws {
        let running = running
        await withDiscardingTaskGroup { group in
            for await (build, job) in jobs.cancelOnGracefulShutdown() {
                group.addTask {
                    let task = Task { await job() }
                    await running.add(build, task)
                    await withTaskCancellationHandler { await task.value } onCancel: { task.cancel() }
                    await running.remove(build)
                }
            }
            await running.cancelAll()
        }
    }
}

/// The tasks of the builds running now.
private actor RunningBuilds {
    private var tasks: [String: Task<Void, Never>] = [:]
    private var cancelled: Set<String> = []

    func add(_ build: String, _ task: Task<Void, Never>) {
        tasks[build] = task
        if cancelled.remove(build) != nil { task.cancel() }
    }

    func remove(_ build: String) { tasks[build] = nil }

    func cancel(_ build: String) {
        if let task = tasks[build] { task.cancel() } else { cancelled.insert(build) }
    }

    func cancelAll() {
        for task in tasks.values { task.cancel() }
    }
}
