/// Time arithmetic of the team statistics: UTC days as numbers, `YYYY-MM-DD` text, and vCPU/memory-minutes per day
/// from a capsule status history.
enum UsageMath {
    static let dayMillis: Int64 = 86_400_000

    /// The UTC day number (days since 1970-01-01) of a millisecond time.
    static func day(ofMillis ms: Int64) -> Int64 {
        ms >= 0 ? ms / dayMillis : (ms - dayMillis + 1) / dayMillis
    }

    /// `YYYY-MM-DD` of a day number (proleptic Gregorian; Howard Hinnant's civil_from_days).
    static func format(day: Int64) -> String {
        let z = day + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        func pad(_ v: Int64, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))"
    }

    /// The day number of a strict `YYYY-MM-DD` (a real calendar date), or nil.
    static func parse(_ text: String) -> Int64? {
        let bytes = Array(text.utf8)
        guard bytes.count == 10, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-") else { return nil }
        func number(_ range: Range<Int>) -> Int64? {
            var value: Int64 = 0
            for i in range {
                guard (48...57).contains(bytes[i]) else { return nil }
                value = value * 10 + Int64(bytes[i] - 48)
            }
            return value
        }
        guard let y = number(0..<4), let m = number(5..<7), let d = number(8..<10), (1...12).contains(m), d >= 1 else { return nil }
        // days_from_civil, then a round trip rejects dates such as 2026-02-30.
        let yy = m <= 2 ? y - 1 : y
        let era = (yy >= 0 ? yy : yy - 399) / 400
        let yoe = yy - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let day = era * 146_097 + doe - 719_468
        return format(day: day) == text ? day : nil
    }

    /// vCPU-minutes and MB-minutes per day in `days`, from status changes sorted by capsule then time: a capsule
    /// uses its vCPUs and memory from a change into a `reserving` status until its next change (or `now`).
    static func perDay(_ changes: [StatusChangeRecord], days: ClosedRange<Int64>, now: Int64,
                       reserving: Set<String>) -> [Int64: (cpu: Double, ram: Double)] {
        var result: [Int64: (cpu: Double, ram: Double)] = [:]
        let windowStart = days.lowerBound * dayMillis
        let windowEnd = min((days.upperBound + 1) * dayMillis, now)
        for (index, change) in changes.enumerated() where reserving.contains(change.status) {
            let next = changes.index(after: index) < changes.endIndex ? changes[changes.index(after: index)] : nil
            let end = (next?.capsuleId == change.capsuleId ? next?.changedAt : nil) ?? now
            var start = max(change.changedAt, windowStart)
            let stop = min(end, windowEnd)
            while start < stop {
                let day = Self.day(ofMillis: start)
                let dayEnd = min((day + 1) * dayMillis, stop)
                let minutes = Double(dayEnd - start) / 60_000
                var entry = result[day] ?? (0, 0)
                entry.cpu += minutes * Double(change.vcpus)
                entry.ram += minutes * Double(change.memoryMb)
                result[day] = entry
                start = dayEnd
            }
        }
        return result
    }

    /// Rounded to 4 decimals, as the original stored them.
    static func round4(_ v: Double) -> Double { (v * 10_000).rounded() / 10_000 }
}
