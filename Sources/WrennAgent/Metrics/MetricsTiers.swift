/// The three retention tiers of a capsule's metrics: raw points for 10 minutes, 30-second means for 2 hours,
/// 5-minute means for 24 hours. Pure value type; the sampler feeds it every 500 ms.
public struct MetricsTiers: Sendable, Codable, Equatable {
    /// Raw samples, oldest first.
    public private(set) var raw: [CapsuleSample] = []
    /// 30-second means, oldest first.
    public private(set) var halfMinute: [CapsuleSample] = []
    /// 5-minute means, oldest first.
    public private(set) var fiveMinute: [CapsuleSample] = []

    /// Raw retention (s).
    public static let rawWindow = 600.0
    /// 30-second tier retention (s).
    public static let halfMinuteWindow = 7200.0
    /// 5-minute tier retention (s).
    public static let fiveMinuteWindow = 86400.0

    private var pendingHalf: [CapsuleSample] = []
    private var pendingFive: [CapsuleSample] = []

    /// Empty tiers.
    public init() {}

    /// Adds a sample; closes 30 s / 5 min buckets when a sample falls into a later bucket, drops expired points.
    public mutating func add(_ sample: CapsuleSample) {
        raw.append(sample)
        if let first = pendingHalf.first, Self.bucket(first.timestamp, 30) != Self.bucket(sample.timestamp, 30) {
            halfMinute.append(Self.mean(pendingHalf, at: Self.bucket(first.timestamp, 30)))
            pendingHalf.removeAll()
        }
        pendingHalf.append(sample)
        if let first = pendingFive.first, Self.bucket(first.timestamp, 300) != Self.bucket(sample.timestamp, 300) {
            fiveMinute.append(Self.mean(pendingFive, at: Self.bucket(first.timestamp, 300)))
            pendingFive.removeAll()
        }
        pendingFive.append(sample)
        let now = sample.timestamp
        raw.removeAll { $0.timestamp < now - Self.rawWindow }
        halfMinute.removeAll { $0.timestamp < now - Self.halfMinuteWindow }
        fiveMinute.removeAll { $0.timestamp < now - Self.fiveMinuteWindow }
    }

    static func bucket(_ time: Double, _ width: Double) -> Double { (time / width).rounded(.down) * width }

    static func mean(_ samples: [CapsuleSample], at time: Double) -> CapsuleSample {
        let n = Double(samples.count)
        return CapsuleSample(
            timestamp: time,
            cpuPercent: samples.map(\.cpuPercent).reduce(0, +) / n,
            memoryBytes: samples.map(\.memoryBytes).reduce(0, +) / n,
            diskBytes: samples.map(\.diskBytes).reduce(0, +) / n)
    }
}
