import Foundation

/// JSON encoding shared by every Wrenn program: RFC 3339 timestamps with millisecond precision (so cursors
/// built from them round-trip exactly) and sorted keys (stable output; see swift-stack-notes pitfall 6).
public enum WireCoding {
    /// Formats a date as RFC 3339 UTC with milliseconds, e.g. `2026-11-29T10:00:00.123Z`.
    public static func formatDate(_ date: Date) -> String {
        // To the nearest millisecond. The formatter truncates, and a date of exactly n ms (`Date(millis:)`, a parsed
        // `….567Z`) is often a hair below it as a Double: aim at the middle of the millisecond so it prints as n.
        let millis = (date.timeIntervalSince1970 * 1000).rounded()
        let date = Date(timeIntervalSince1970: (millis + 0.5) / 1000)
        return date.formatted(.iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: true)
            .timeSeparator(.colon).timeZone(separator: .omitted))
    }

    /// Parses RFC 3339 with or without fractional seconds; nil when malformed.
    public static func parseDate(_ text: String) -> Date? {
        if let d = try? Date(text, strategy: .iso8601.year().month().day().dateSeparator(.dash)
            .time(includingFractionalSeconds: true).timeSeparator(.colon).timeZone(separator: .omitted)) { return d }
        if let d = try? Date(text, strategy: .iso8601) { return d }
        return nil
    }

    /// The encoder every API response uses.
    public static func makeEncoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        e.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(formatDate(date))
        }
        return e
    }

    /// The decoder every client and request parser uses.
    public static func makeDecoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .custom { decoder in
            let c = try decoder.singleValueContainer()
            let text = try c.decode(String.self)
            guard let date = parseDate(text) else {
                throw DecodingError.dataCorruptedError(in: c, debugDescription: "not an RFC 3339 date-time: \(text)")
            }
            return date
        }
        return d
    }
}
