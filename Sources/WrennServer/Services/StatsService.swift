import Foundation
import ServiceLifecycle
import WrennWire

/// The team's capsule statistics (`GET /v1/capsules/stats`) and daily usage (`GET /v1/capsules/usage`), and the two
/// passes behind them: the sampler tick (per-team samples of what is reserved) and the daily usage rollup.
///
/// - A capsule *reserves* its vCPUs and memory while a VM exists or is being made or removed for it: `starting`,
///   `running`, `pausing`, `resuming`, `stopping`. Paused capsules keep their memory in a file on disk, not in RAM.
/// - Stats series come from the samples; usage comes from the capsules' status history (`capsule_status_changes`,
///   written by database triggers on every status write), which is exact across pause/resume and control plane
///   restarts (a capsule keeps running on its host while the control plane is down) and is not counted twice by
///   several replicas, as per-sample sums would be.
public struct StatsService: Sendable {
    static let reserving = ["starting", "running", "pausing", "resuming", "stopping"]
    /// range → (window, bucket) in milliseconds.
    static let ranges: [String: (window: Int64, bucket: Int64)] = [
        "5m": (300_000, 3_000), "1h": (3_600_000, 30_000), "6h": (21_600_000, 180_000),
        "24h": (86_400_000, 720_000), "30d": (2_592_000_000, 21_600_000),
    ]
    static let peakWindow: Int64 = 30 * UsageMath.dayMillis
    /// Samples are kept a little longer than the longest window.
    static let sampleRetention: Int64 = 35 * UsageMath.dayMillis
    /// Status history is kept long enough to recompute any day the usage API can show that was not rolled up.
    static let historyRetention: Int64 = 100 * UsageMath.dayMillis
    /// The longest usage range (`to` − `from`), as the original.
    static let maxUsageSpanDays: Int64 = 92
    /// Complete days each rollup pass recomputes (covers a control plane that was down for a few days).
    static let rollupDays: Int64 = 7

    let database: Database
    let clock: any WallClock
    let sampleInterval: Duration

    var sampleMillis: Int64 { max(1, Int64(sampleInterval.components.seconds * 1000 + sampleInterval.components.attoseconds / 1_000_000_000_000_000)) }

    // MARK: Stats

    public func stats(_ principal: Principal, range: String?) async throws -> CapsuleStats {
        let team = try principal.requireTeam()
        let range = range ?? "1h"
        guard let shape = Self.ranges[range] else { throw ServiceError.invalid("range: must be one of 5m, 1h, 6h, 24h, 30d") }
        let now = clock.now()
        let nowMs = now.millis
        let staleness = 2 * sampleMillis
        let firstBucket = (nowMs - shape.window) / shape.bucket
        let lastBucket = nowMs / shape.bucket
        let (current, peaks, rows) = try await database.read { sql in
            let current = try await StatsRepository.reservation(team: team, statuses: Self.reserving, sql)
            let peaks = try await StatsRepository.peaks(team: team, since: nowMs - Self.peakWindow, sql)
            let rows = try await StatsRepository.buckets(team: team, from: firstBucket * shape.bucket - staleness, to: nowMs + 1,
                                                         bucketMillis: shape.bucket, sql)
            return (current, peaks, rows)
        }
        // Each bucket shows the maxima of its samples; a bucket without a sample (shorter than the sampling
        // interval) carries the previous sample's values while that sample is fresh, else zeros.
        var byBucket: [Int64: StatsBucketRow] = [:]
        var carried: StatsBucketRow?
        for row in rows {
            if row.bucket < firstBucket { carried = row } else { byBucket[row.bucket] = row }
        }
        var series = CapsuleStats.Series(labels: [], running: [], vcpus: [], memoryMB: [])
        for bucket in firstBucket...lastBucket {
            let start = bucket * shape.bucket
            var value: StatsBucketRow?
            if let row = byBucket[bucket] {
                value = row
                carried = row
            } else if let last = carried, start - last.lastAt < staleness {
                value = last
            }
            series.labels.append(Date(millis: start))
            series.running.append(Int(value?.runningCount ?? 0))
            series.vcpus.append(Int(value?.vcpus ?? 0))
            series.memoryMB.append(Int(value?.memoryMb ?? 0))
        }
        return CapsuleStats(
            range: range,
            current: .init(runningCount: Int(current.runningCount), vcpusReserved: Int(current.vcpus), memoryMBReserved: Int(current.memoryMb),
                           sampledAt: now),
            peaks: .init(runningCount: Int(max(peaks?.running ?? 0, current.runningCount)), vcpus: Int(max(peaks?.vcpus ?? 0, current.vcpus)),
                         memoryMB: Int(max(peaks?.memoryMb ?? 0, current.memoryMb))),
            series: series)
    }

    // MARK: Usage

    public func usage(_ principal: Principal, from: String?, to: String?) async throws -> UsageResponse {
        let team = try principal.requireTeam()
        let nowMs = clock.now().millis
        let today = UsageMath.day(ofMillis: nowMs)
        let toDay: Int64
        if let to {
            guard let parsed = UsageMath.parse(to) else { throw ServiceError.invalid("to: must be a date YYYY-MM-DD") }
            toDay = parsed
        } else {
            toDay = today
        }
        let fromDay: Int64
        if let from {
            guard let parsed = UsageMath.parse(from) else { throw ServiceError.invalid("from: must be a date YYYY-MM-DD") }
            fromDay = parsed
        } else {
            fromDay = toDay - 29
        }
        guard fromDay <= toDay else { throw ServiceError.invalid("from: must not be after to") }
        guard toDay - fromDay <= Self.maxUsageSpanDays else {
            throw ServiceError.invalid("to: must be at most \(Self.maxUsageSpanDays) days after from")
        }
        let fromText = UsageMath.format(day: fromDay), toText = UsageMath.format(day: toDay)
        let rolled = try await database.read { sql in try await StatsRepository.daily(team: team, from: fromText, to: toText, sql) }
        var values: [Int64: (cpu: Double, ram: Double)] = [:]
        for row in rolled {
            if let day = UsageMath.parse(row.day), day < today { values[day] = (row.cpuMinutes, row.ramMbMinutes) }
        }
        // Today, and past days the rollup has not written, come from the status history.
        let missing = fromDay <= today ? (fromDay...min(toDay, today)).filter { values[$0] == nil } : []
        if let first = missing.first, let last = missing.last {
            let changes = try await database.read { sql in
                try await StatsRepository.changes(team: team, from: first * UsageMath.dayMillis, to: (last + 1) * UsageMath.dayMillis, sql)
            }
            let live = UsageMath.perDay(changes, days: first...last, now: nowMs, reserving: Set(Self.reserving))
            for day in missing { values[day] = live[day] ?? (0, 0) }
        }
        let points = (fromDay...toDay).map { day in
            let v = values[day] ?? (0, 0)
            return UsagePoint(date: UsageMath.format(day: day), cpuMinutes: UsageMath.round4(v.cpu), ramMBMinutes: UsageMath.round4(v.ram))
        }
        return UsageResponse(from: fromText, to: toText, points: points)
    }

    // MARK: Background passes

    /// Waits until the statistics tables exist (checked every `poll`); false when cancelled or shutting down.
    func waitForSchema(poll: Duration) async -> Bool {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            if (try? await database.read({ sql in await StatsRepository.schemaReady(sql) })) == true { return true }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: poll) }
        }
        return false
    }

    /// One sampler tick: a sample for every team that reserves something, and a zero sample for a team that was
    /// busy in a sample since `previous` (the last tick's slot; a day back on the first tick) and is idle now. The
    /// tick time is rounded down to the interval so replicas write one row. Prunes old samples. Returns the slot.
    @discardableResult
    func sample(previous: Int64?) async throws -> Int64 {
        let nowMs = clock.now().millis
        let slot = nowMs - nowMs % sampleMillis
        try await database.transaction { sql in
            let reservations = try await StatsRepository.reservations(statuses: Self.reserving, sql)
            let busy = try await StatsRepository.teamsSampledBusy(since: min(previous ?? nowMs - UsageMath.dayMillis, slot), sql)
            var byTeam = Dictionary(reservations.map { ($0.teamId, $0) }, uniquingKeysWith: { a, _ in a })
            for team in busy where byTeam[team] == nil {
                byTeam[team] = ReservationRow(teamId: team, runningCount: 0, vcpus: 0, memoryMb: 0)
            }
            for r in byTeam.values {
                try await StatsRepository.insertSample(.init(teamId: r.teamId, sampledAt: slot, runningCount: r.runningCount,
                                                             vcpusReserved: r.vcpus, memoryMbReserved: r.memoryMb), sql)
            }
            try await StatsRepository.pruneSamples(before: nowMs - Self.sampleRetention, sql)
        }
        return slot
    }

    /// One rollup pass: recomputes the last complete days of every team with status history into `daily_usage`,
    /// then prunes history that no longer decides anything.
    func rollup() async throws {
        let nowMs = clock.now().millis
        let today = UsageMath.day(ofMillis: nowMs)
        let days = (today - Self.rollupDays)...(today - 1)
        let teams = try await database.read { sql in try await StatsRepository.teamsWithChanges(sql) }
        for team in teams {
            try await database.transaction { sql in
                let changes = try await StatsRepository.changes(team: team, from: days.lowerBound * UsageMath.dayMillis,
                                                                to: (days.upperBound + 1) * UsageMath.dayMillis, sql)
                let perDay = UsageMath.perDay(changes, days: days, now: nowMs, reserving: Set(Self.reserving))
                for (day, value) in perDay where value.cpu > 0 || value.ram > 0 {
                    try await StatsRepository.upsertDaily(team: team, .init(day: UsageMath.format(day: day), cpuMinutes: UsageMath.round4(value.cpu),
                                                                            ramMbMinutes: UsageMath.round4(value.ram)), sql)
                }
            }
        }
        try await database.transaction { sql in
            try await StatsRepository.pruneChanges(before: nowMs - Self.historyRetention, reserving: Self.reserving, sql)
        }
    }
}
