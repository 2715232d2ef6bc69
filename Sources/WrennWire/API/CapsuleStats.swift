import Foundation

// Wire types of the team's capsule statistics (`GET /v1/capsules/stats`) and daily usage (`GET /v1/capsules/usage`).

/// `CapsuleStats`: what the team reserves now, its 30-day peaks, and a chart series for the requested range.
public struct CapsuleStats: Codable, Sendable, Equatable {
    public var range: String
    public var current: Current
    public var peaks: Peaks
    public var series: Series

    public init(range: String, current: Current, peaks: Peaks, series: Series) {
        self.range = range; self.current = current; self.peaks = peaks; self.series = series
    }

    /// `CapsuleStats.current`.
    public struct Current: Codable, Sendable, Equatable {
        public var runningCount: Int
        public var vcpusReserved: Int
        public var memoryMBReserved: Int
        public var sampledAt: Date?
        public init(runningCount: Int, vcpusReserved: Int, memoryMBReserved: Int, sampledAt: Date?) {
            self.runningCount = runningCount; self.vcpusReserved = vcpusReserved; self.memoryMBReserved = memoryMBReserved
            self.sampledAt = sampledAt
        }
        enum CodingKeys: String, CodingKey {
            case runningCount = "running_count", vcpusReserved = "vcpus_reserved", memoryMBReserved = "memory_mb_reserved"
            case sampledAt = "sampled_at"
        }
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(runningCount, forKey: .runningCount)
            try c.encode(vcpusReserved, forKey: .vcpusReserved)
            try c.encode(memoryMBReserved, forKey: .memoryMBReserved)
            try c.encode(sampledAt, forKey: .sampledAt) // explicit null, as the spec marks it nullable
        }
    }

    /// `CapsuleStats.peaks`: maxima over the last 30 days.
    public struct Peaks: Codable, Sendable, Equatable {
        public var runningCount: Int
        public var vcpus: Int
        public var memoryMB: Int
        public init(runningCount: Int, vcpus: Int, memoryMB: Int) {
            self.runningCount = runningCount; self.vcpus = vcpus; self.memoryMB = memoryMB
        }
        enum CodingKeys: String, CodingKey { case runningCount = "running_count", vcpus, memoryMB = "memory_mb" }
    }

    /// `CapsuleStats.series`: parallel arrays, one entry per time bucket (labels are the buckets' starts).
    public struct Series: Codable, Sendable, Equatable {
        public var labels: [Date]
        public var running: [Int]
        public var vcpus: [Int]
        public var memoryMB: [Int]
        public init(labels: [Date], running: [Int], vcpus: [Int], memoryMB: [Int]) {
            self.labels = labels; self.running = running; self.vcpus = vcpus; self.memoryMB = memoryMB
        }
        enum CodingKeys: String, CodingKey { case labels, running, vcpus, memoryMB = "memory_mb" }
    }
}

/// `UsageResponse`: CPU and RAM use per UTC day; dates are `YYYY-MM-DD`.
public struct UsageResponse: Codable, Sendable, Equatable {
    public var from: String
    public var to: String
    public var points: [UsagePoint]
    public init(from: String, to: String, points: [UsagePoint]) { self.from = from; self.to = to; self.points = points }
}

/// One day of `UsageResponse.points`: vCPU-minutes and MB-minutes of memory reserved by running capsules.
public struct UsagePoint: Codable, Sendable, Equatable {
    public var date: String
    public var cpuMinutes: Double
    public var ramMBMinutes: Double
    public init(date: String, cpuMinutes: Double, ramMBMinutes: Double) {
        self.date = date; self.cpuMinutes = cpuMinutes; self.ramMBMinutes = ramMBMinutes
    }
    enum CodingKeys: String, CodingKey { case date, cpuMinutes = "cpu_minutes", ramMBMinutes = "ram_mb_minutes" }
}
