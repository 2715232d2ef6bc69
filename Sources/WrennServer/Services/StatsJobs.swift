import Logging
import ServiceLifecycle

/// Records every team's reservation each `interval` (default 10 s, `ServerConfig.statsSampleInterval`) for the stats
/// series and peaks; prunes samples older than 35 days.
struct StatsSampler: Service {
    let stats: StatsService
    let interval: Duration
    let logger: Logger

    func run() async throws {
        guard await stats.waitForSchema(poll: min(interval, .seconds(1))) else { return }
        var previous: Int64?
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            do {
                previous = try await stats.sample(previous: previous)
            } catch {
                logger.error("stats sample failed", metadata: ["error": "\(String(reflecting: error))"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}

/// Rolls the capsules' status history up into `daily_usage` each `interval` (default hourly,
/// `ServerConfig.usageRollupInterval`), first as soon as the schema is in place.
struct UsageRollupJob: Service {
    let stats: StatsService
    let interval: Duration
    let logger: Logger

    func run() async throws {
        guard await stats.waitForSchema(poll: min(interval, .seconds(1))) else { return }
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            do {
                try await stats.rollup()
            } catch {
                logger.error("usage rollup failed", metadata: ["error": "\(String(reflecting: error))"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
