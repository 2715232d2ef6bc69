import Foundation
import HTTPTypes
import HummingbirdTesting
import HummingbirdWSClient
import Logging
import SQLKit
import Testing
import WrennServer
import WrennTestSupport
import WrennWire

/// `GET /v1/capsules/stats` and `/usage` over a real control plane, agent and envd: the sampler service runs every
/// 50 ms against the test's manual clock, the rollup job every 50 ms; capsules run for known clock times.
@Suite("capsule stats, daily usage and stream activity", .serialized)
struct CapsuleStatsTests {
    struct Platform {
        let cp: TestControlPlane
        let sdk: Browser
        let user: Browser
        let team: String
    }

    static func withPlatform(_ backend: TestBackend, _ body: @Sendable @escaping (Platform) async throws -> Void) async throws {
        let agent = try await LocalAgent.start()
        do {
            try await TestControlPlane.run(backend, configure: {
                $0.agent = .init(url: agent.baseURL, token: agent.token)
                $0.statsSampleInterval = .milliseconds(50)
                $0.usageRollupInterval = .milliseconds(50)
            }) { cp in
                let user = try await cp.signedInUser(email: "stats@e2e.test")
                let key = try await user.post("/v1/api-keys", json: ["name": "sdk"]).decode(APIKeyResponse.self)
                let sdk = cp.browser()
                sdk.apiKey = try #require(key.key)
                try await body(Platform(cp: cp, sdk: sdk, user: user, team: key.teamId))
            }
        } catch {
            await agent.stop()
            throw error
        }
        await agent.stop()
    }

    static func create(_ p: Platform, vcpus: Int = 1, memoryMB: Int = 512) async throws -> String {
        let created = try await p.sdk.post("/v1/capsules", json: ["vcpus": vcpus, "memory_mb": memoryMB])
        #expect(created.status == .accepted)
        let id = try created.decode(Capsule.self).id
        _ = try await CapsuleAPITests.wait(p.sdk, id, for: .running)
        return id
    }

    /// Waits until the sampler has recorded the team's sample for the clock's current tick, and returns it.
    @discardableResult
    static func waitForSample(_ p: Platform) async throws -> (running: Int64, vcpus: Int64, memory: Int64) {
        let now = Int64((p.cp.clock.now().timeIntervalSince1970 * 1000).rounded(.down))
        let slot = now - now % 50
        let team = p.team
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            struct Row: Decodable { var running_count: Int64; var vcpus_reserved: Int64; var memory_mb_reserved: Int64 }
            let row = try await p.cp.assembly.database.read { sql in
                try await sql.raw("""
                    SELECT running_count, vcpus_reserved, memory_mb_reserved FROM capsule_stats_samples
                    WHERE team_id = \(bind: team) AND sampled_at = \(bind: slot)
                    """).first(decoding: Row.self)
            }
            if let row { return (row.running_count, row.vcpus_reserved, row.memory_mb_reserved) }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestBackendError("no sample at \(slot)")
    }

    static func stats(_ p: Platform, _ range: String? = nil) async throws -> CapsuleStats {
        let response = try await p.sdk.get("/v1/capsules/stats" + (range.map { "?range=\($0)" } ?? ""))
        #expect(response.status == .ok)
        return try response.decode(CapsuleStats.self)
    }

    /// The series entry whose bucket holds `date`.
    static func bucket(_ s: CapsuleStats, at date: Date) -> (running: Int, vcpus: Int, memory: Int)? {
        guard let index = s.series.labels.lastIndex(where: { $0 <= date }) else { return nil }
        return (s.series.running[index], s.series.vcpus[index], s.series.memoryMB[index])
    }

    @Test(arguments: TestBackend.available)
    func samplerFeedsCurrentPeaksAndSeries(_ backend: TestBackend) async throws {
        try await Self.withPlatform(backend) { p in
            let empty = try await Self.stats(p)
            #expect(empty.range == "1h")
            #expect(empty.current == .init(runningCount: 0, vcpusReserved: 0, memoryMBReserved: 0, sampledAt: empty.current.sampledAt))
            #expect(empty.peaks == .init(runningCount: 0, vcpus: 0, memoryMB: 0))
            #expect(empty.series.labels.count == 121)
            #expect(empty.series.labels[1].timeIntervalSince(empty.series.labels[0]) == 30)
            #expect(empty.series.running.allSatisfy { $0 == 0 } && empty.series.running.count == 121)

            let a = try await Self.create(p)
            let t1 = p.cp.clock.now()
            #expect(try await Self.waitForSample(p) == (1, 1, 512))
            let b = try await Self.create(p, vcpus: 2, memoryMB: 1024)
            p.cp.clock.advance(by: 60)
            let t2 = p.cp.clock.now()
            #expect(try await Self.waitForSample(p) == (2, 3, 1536))
            let two = try await Self.stats(p, "5m")
            #expect(two.range == "5m")
            #expect(two.current.runningCount == 2 && two.current.vcpusReserved == 3 && two.current.memoryMBReserved == 1536)
            #expect(two.peaks == .init(runningCount: 2, vcpus: 3, memoryMB: 1536))
            #expect(two.series.labels.count == 101)
            #expect(Self.bucket(two, at: t1)! == (1, 1, 512))
            #expect(Self.bucket(two, at: t2)! == (2, 3, 1536))

            #expect(try await p.sdk.delete("/v1/capsules/\(b)").status == .accepted)
            _ = try await CapsuleAPITests.wait(p.sdk, b, for: .stopped)
            p.cp.clock.advance(by: 60)
            let t3 = p.cp.clock.now()
            #expect(try await Self.waitForSample(p) == (1, 1, 512))
            let one = try await Self.stats(p, "5m")
            #expect(one.current.runningCount == 1 && one.current.vcpusReserved == 1 && one.current.memoryMBReserved == 512)
            #expect(one.peaks == .init(runningCount: 2, vcpus: 3, memoryMB: 1536)) // the peak outlives the capsule
            #expect(Self.bucket(one, at: t3)! == (1, 1, 512))
            #expect(Self.bucket(one, at: t2)! == (2, 3, 1536))
            for (range, count, step) in [("1h", 121, 30.0), ("6h", 121, 180.0), ("24h", 121, 720.0), ("30d", 121, 21600.0)] {
                let s = try await Self.stats(p, range)
                #expect(s.range == range)
                #expect(s.series.labels.count == count && s.series.running.count == count && s.series.vcpus.count == count
                        && s.series.memoryMB.count == count)
                #expect(s.series.labels[1].timeIntervalSince(s.series.labels[0]) == step)
                #expect(s.series.running.max() == 2 && s.series.memoryMB.max() == 1536, "range \(range)")
                if range == "1h" { #expect(s.series.running.last == 1) } // wider buckets also hold the 2-capsule sample
            }
            let bad = try await p.sdk.get("/v1/capsules/stats?range=7d")
            #expect(bad.status == .badRequest)
            #expect(bad.errorMessage?.hasPrefix("range") == true)

            // 31 days later only capsule a has run in the last 30 days: the 2-capsule peak has aged out.
            p.cp.clock.advance(by: 31 * 86400)
            #expect(try await Self.waitForSample(p) == (1, 1, 512))
            let later = try await Self.stats(p, "30d")
            #expect(later.peaks == .init(runningCount: 1, vcpus: 1, memoryMB: 512))
            #expect(later.series.running.max() == 1)
            // Samples older than 35 days are pruned.
            p.cp.clock.advance(by: 5 * 86400)
            try await Self.waitForSample(p)
            let cutoff = Int64(t3.timeIntervalSince1970 * 1000) + 1
            let old = try await p.cp.assembly.database.read { sql in
                try await sql.raw("SELECT COUNT(*) AS n FROM capsule_stats_samples WHERE sampled_at < \(bind: cutoff)")
                    .first(decodingColumn: "n", as: Int64.self)
            }
            #expect(old == 0)

            // Going idle records one zero sample, so the series falls to zero.
            #expect(try await p.sdk.delete("/v1/capsules/\(a)").status == .accepted)
            _ = try await CapsuleAPITests.wait(p.sdk, a, for: .stopped)
            p.cp.clock.advance(by: 60)
            #expect(try await Self.waitForSample(p) == (0, 0, 0))
            let idle = try await Self.stats(p, "5m")
            #expect(idle.current.runningCount == 0 && idle.series.running.last == 0)
        }
    }

    /// Seconds from the clock's now to the next UTC midnight.
    static func secondsToMidnight(_ clock: ManualWallClock) -> TimeInterval {
        let now = clock.now().timeIntervalSince1970
        return (floor(now / 86400) + 1) * 86400 - now
    }

    static func day(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d-%02d-%02d", c.year!, c.month!, c.day!)
    }

    @Test(arguments: TestBackend.available)
    func usageCountsRunningTimeAcrossPauseAndMidnight(_ backend: TestBackend) async throws {
        try await Self.withPlatform(backend) { p in
            let clock = p.cp.clock
            clock.advance(by: Self.secondsToMidnight(clock) - 600) // 23:50 UTC
            let day1 = Self.day(clock.now())
            let id = try await Self.create(p, vcpus: 2, memoryMB: 1024)
            clock.advance(by: 1800) // 10 min on day 1, 20 min on day 2
            let day2 = Self.day(clock.now())
            #expect(try await p.sdk.post("/v1/capsules/\(id)/pause").status == .accepted)
            _ = try await CapsuleAPITests.wait(p.sdk, id, for: .paused)
            clock.advance(by: 3600) // paused: reserves nothing
            #expect(try await p.sdk.post("/v1/capsules/\(id)/resume").status == .accepted)
            _ = try await CapsuleAPITests.wait(p.sdk, id, for: .running)
            clock.advance(by: 300)
            #expect(try await p.sdk.delete("/v1/capsules/\(id)").status == .accepted)
            _ = try await CapsuleAPITests.wait(p.sdk, id, for: .stopped)
            clock.advance(by: 7200) // stopped: nothing more

            let expected = [UsagePoint(date: day1, cpuMinutes: 20, ramMBMinutes: 10240),
                            UsagePoint(date: day2, cpuMinutes: 50, ramMBMinutes: 25600)]
            let usage = try await p.sdk.get("/v1/capsules/usage?from=\(day1)&to=\(day2)").decode(UsageResponse.self)
            #expect(usage == UsageResponse(from: day1, to: day2, points: expected))
            let defaults = try await p.sdk.get("/v1/capsules/usage").decode(UsageResponse.self)
            #expect(defaults.to == day2 && defaults.points.count == 30 && defaults.points.suffix(2) == expected[...])
            #expect(defaults.points.dropLast(2).allSatisfy { $0.cpuMinutes == 0 && $0.ramMBMinutes == 0 })

            // Once both days are complete the rollup job writes them to daily_usage, and the API serves them.
            clock.advance(by: 86400)
            let team = p.team
            let deadline = ContinuousClock.now + .seconds(10)
            var rows: [String] = []
            while rows.count < 2, ContinuousClock.now < deadline {
                rows = try await p.cp.assembly.database.read { sql in
                    try await sql.raw("""
                        SELECT day || ' ' || CAST(cpu_minutes AS TEXT) || ' ' || CAST(ram_mb_minutes AS TEXT) AS r FROM daily_usage
                        WHERE team_id = \(bind: team) ORDER BY day
                        """).all(decodingColumn: "r", as: String.self)
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(rows.count == 2)
            #expect(rows.first?.hasPrefix("\(day1) 20") == true && rows.last?.hasPrefix("\(day2) 50") == true, "\(rows)")
            let rolled = try await p.sdk.get("/v1/capsules/usage?from=\(day1)&to=\(day2)").decode(UsageResponse.self)
            #expect(rolled.points == expected)

            // Today is computed live, up to now.
            let live = try await Self.create(p)
            clock.advance(by: 90)
            let today = try await p.sdk.get("/v1/capsules/usage").decode(UsageResponse.self)
            #expect(today.points.last == UsagePoint(date: Self.day(clock.now()), cpuMinutes: 1.5, ramMBMinutes: 768))
            _ = try await p.sdk.delete("/v1/capsules/\(live)")
            _ = try await CapsuleAPITests.wait(p.sdk, live, for: .stopped)
        }
    }

    @Test(arguments: TestBackend.available)
    func validationAuthenticationAndTeamIsolation(_ backend: TestBackend) async throws {
        try await Self.withPlatform(backend) { p in
            for (query, field) in [("from=2026-02-30", "from"), ("from=yesterday", "from"), ("to=2026-1-01", "to"),
                                   ("from=2026-03-10&to=2026-03-01", "from"), ("from=2026-01-01&to=2026-06-01", "to")] {
                let r = try await p.sdk.get("/v1/capsules/usage?\(query)")
                #expect(r.status == .badRequest, "\(query)")
                #expect(r.errorCode == "invalid_request" || r.errorCode != nil)
                #expect(r.errorMessage?.hasPrefix(field) == true, "\(query): \(r.errorMessage ?? "")")
            }
            for (from, to, dates) in [("2024-02-28", "2024-03-01", ["2024-02-28", "2024-02-29", "2024-03-01"]),
                                      ("2025-12-31", "2026-01-01", ["2025-12-31", "2026-01-01"]),
                                      ("1970-01-01", "1970-01-01", ["1970-01-01"])] {
                let r = try await p.sdk.get("/v1/capsules/usage?from=\(from)&to=\(to)").decode(UsageResponse.self)
                #expect(r.points.map(\.date) == dates)
            }
            #expect(try await p.sdk.get("/v1/capsules/usage?from=2023-02-29&to=2023-03-01").status == .badRequest)
            let longest = try await p.sdk.get("/v1/capsules/usage?from=2026-01-01&to=2026-04-03")
            #expect(longest.status == .ok)
            #expect(try longest.decode(UsageResponse.self).points.count == 93)
            let onlyTo = try await p.sdk.get("/v1/capsules/usage?to=2026-03-31").decode(UsageResponse.self)
            #expect(onlyTo.from == "2026-03-02" && onlyTo.points.first?.date == "2026-03-02" && onlyTo.points.last?.date == "2026-03-31")

            let anonymous = p.cp.browser()
            #expect(try await anonymous.get("/v1/capsules/stats").status == .unauthorized)
            #expect(try await anonymous.get("/v1/capsules/usage").status == .unauthorized)
            #expect(try await p.user.get("/v1/capsules/stats?range=24h").status == .ok) // the session cookie works too
            #expect(try await p.user.get("/v1/capsules/usage").status == .ok)

            let mine = try await Self.create(p, vcpus: 2, memoryMB: 1024)
            p.cp.clock.advance(by: 120)
            try await Self.waitForSample(p)
            let other = try await p.cp.signedInUser(email: "stranger@e2e.test")
            let stranger = p.cp.browser()
            stranger.apiKey = try #require(try await other.post("/v1/api-keys", json: [:]).decode(APIKeyResponse.self).key)
            let theirs = try await stranger.get("/v1/capsules/stats?range=5m").decode(CapsuleStats.self)
            #expect(theirs.current.runningCount == 0 && theirs.peaks == .init(runningCount: 0, vcpus: 0, memoryMB: 0))
            #expect(theirs.series.running.allSatisfy { $0 == 0 })
            let theirUsage = try await stranger.get("/v1/capsules/usage").decode(UsageResponse.self)
            #expect(theirUsage.points.allSatisfy { $0.cpuMinutes == 0 && $0.ramMBMinutes == 0 })
            let ours = try await p.sdk.get("/v1/capsules/usage").decode(UsageResponse.self)
            #expect(ours.points.last?.cpuMinutes == 4)
            #expect(try await Self.stats(p, "5m").peaks.vcpus == 2)
            _ = try await p.sdk.delete("/v1/capsules/\(mine)")
            _ = try await CapsuleAPITests.wait(p.sdk, mine, for: .stopped)
        }
    }

    @Test func wireTypesMatchTheSpec() throws {
        let schemas = try WireSchemaTests.schemas()
        let samples: [(String, any Encodable & Sendable)] = [
            ("CapsuleStats", CapsuleStats(range: "1h", current: .init(runningCount: 1, vcpusReserved: 1, memoryMBReserved: 512, sampledAt: nil),
                                          peaks: .init(runningCount: 1, vcpus: 1, memoryMB: 512),
                                          series: .init(labels: [Date()], running: [1], vcpus: [1], memoryMB: [512]))),
            ("UsageResponse", UsageResponse(from: "2026-01-01", to: "2026-01-02", points: [])),
        ]
        for (name, sample) in samples {
            let (all, _) = WireSchemaTests.properties(name, in: schemas)
            let encoded = try WireSchemaTests.keys(sample)
            #expect(encoded == all, "\(name)")
        }
        let stats = try #require(schemas["CapsuleStats"] as? [String: Any])
        let properties = try #require(stats["properties"] as? [String: Any])
        for (part, sample) in [("current", CapsuleStats.Current(runningCount: 0, vcpusReserved: 0, memoryMBReserved: 0, sampledAt: nil)) as (String, any Encodable & Sendable),
                               ("peaks", CapsuleStats.Peaks(runningCount: 0, vcpus: 0, memoryMB: 0)),
                               ("series", CapsuleStats.Series(labels: [], running: [], vcpus: [], memoryMB: []))] {
            let schema = try #require((properties[part] as? [String: Any])?["properties"] as? [String: Any])
            #expect(try WireSchemaTests.keys(sample) == Set(schema.keys), "\(part)")
        }
        let usage = try #require((schemas["UsageResponse"] as? [String: Any])?["properties"] as? [String: Any])
        let point = try #require(((usage["points"] as? [String: Any])?["items"] as? [String: Any])?["properties"] as? [String: Any])
        #expect(try WireSchemaTests.keys(UsagePoint(date: "2026-01-01", cpuMinutes: 0, ramMBMinutes: 0)) == Set(point.keys))
    }

    /// WebSocket streams keep `last_active_at` current: touched on open, then while traffic flows at most every 15 s.
    @Test func streamTrafficTouchesLastActiveAt() async throws {
        try await Self.withPlatform(.sqlite) { p in
            let id = try await Self.create(p)
            p.cp.clock.advance(by: 100)
            // Compared in milliseconds, ±1 (the API's RFC 3339 rendering of a millisecond time may round down by one).
            let opened = Int64((p.cp.clock.now().timeIntervalSince1970 * 1000).rounded(.down))
            let port = try #require(p.cp.client.port)
            var headers = HTTPFields()
            headers[HTTPField.Name("X-API-Key")!] = try #require(p.sdk.apiKey)
            var logger = Logger(label: "test.ws")
            logger.logLevel = .critical
            let sdk = p.sdk, clock = p.cp.clock
            @Sendable func lastActive() async throws -> Int64? {
                try await sdk.get("/v1/capsules/\(id)").decode(Capsule.self).lastActiveAt.map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) }
            }
            let seen = CapsuleAPITests.Frames()
            _ = try await WebSocketClient.connect(url: "ws://127.0.0.1:\(port)/v1/capsules/\(id)/exec/stream",
                                                  configuration: .init(additionalHeaders: headers), logger: logger) { inbound, outbound, _ in
                try await outbound.write(.text(#"{"type":"start","cmd":"/bin/sh","args":["-c","echo a; sleep 1; echo b; sleep 1; echo c; sleep 30"]}"#))
                for try await message in inbound.messages(maxSize: 1 << 20) {
                    guard case .text(let text) = message,
                          let frame = try? WireCoding.makeDecoder().decode(ProcessStreamFrame.self, from: Data(text.utf8)),
                          frame.type == .stdout, let data = frame.data else { continue }
                    seen.append(data)
                    switch data {
                    case "a\n":
                        #expect(abs((try await lastActive() ?? 0) - opened) <= 1) // touched on open
                        clock.advance(by: 5)
                    case "b\n":
                        #expect(abs((try await lastActive() ?? 0) - opened) <= 1) // 5 s later: not written again
                        clock.advance(by: 20)
                    case "c\n":
                        #expect(abs((try await lastActive() ?? 0) - (opened + 25_000)) <= 1) // 25 s later, mid-stream
                        return
                    default: continue
                    }
                }
            }
            #expect(seen.all == ["a\n", "b\n", "c\n"])
        }
    }
}

@Suite("stats configuration")
struct StatsConfigTests {
    @Test func sampleIntervalFromTheEnvironment() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wrenn-cfg-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let base = ["WRENN_DIR": dir, "WRENN_SECRET": String(repeating: "k", count: 40)]
        #expect(try ServerConfig.fromEnvironment(base, dotEnvPath: "/nonexistent/.env").statsSampleInterval == .seconds(10))
        let fast = try ServerConfig.fromEnvironment(base.merging(["WRENN_STATS_SAMPLE_SECONDS": "2.5"]) { $1 }, dotEnvPath: "/nonexistent/.env")
        #expect(fast.statsSampleInterval == .milliseconds(2500))
        #expect(throws: (any Error).self) {
            try ServerConfig.fromEnvironment(base.merging(["WRENN_STATS_SAMPLE_SECONDS": "0"]) { $1 }, dotEnvPath: "/nonexistent/.env")
        }
    }
}
