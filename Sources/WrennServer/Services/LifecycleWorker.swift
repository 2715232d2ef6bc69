import Logging
import ServiceLifecycle

/// Runs capsule lifecycle work (create, pause, resume, destroy on an agent) after the API has answered 202.
///
/// Jobs run concurrently in a task group owned by this service; on graceful shutdown it stops taking new jobs and
/// waits for the ones in flight. Jobs that never ran (process killed) are recovered at the next start by
/// `CapsuleService.reconcileTransitional()`, which asks the agent what really happened.
public final class LifecycleWorker: Service, Sendable {
    public typealias Job = @Sendable () async -> Void
    private let jobs: AsyncStream<Job>
    private let continuation: AsyncStream<Job>.Continuation

    public init() {
        (jobs, continuation) = AsyncStream.makeStream(of: Job.self)
    }

    func submit(_ job: @escaping Job) {
        continuation.yield(job)
    }

    public func run() async throws {
        await withDiscardingTaskGroup { group in
            for await job in jobs.cancelOnGracefulShutdown() {
                group.addTask { await job() }
            }
        }
    }
}
