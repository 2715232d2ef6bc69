import Foundation

/// External identifiers: a type prefix plus the 25-character base36 form of a UUID (reference §3).
///
/// The database stores the UUID text; the API edge shows `prefix + base36`. The zero UUID (the platform
/// team) formats as 25 zeros.
public enum IDKind: String, Sendable, CaseIterable {
    case capsule = "cl-"
    case user = "usr-"
    case team = "team-"
    case apiKey = "key-"
    case host = "host-"
    case hostToken = "htok-"
    case hostRefreshToken = "hrt-"
    case auditLog = "log-"
    case build = "bld-"
    case channel = "ch-"
    case session = "ses-"
}

public enum PrefixedID {
    static let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyz".utf8)
    /// Length of the base36 part: 36^25 > 2^128.
    public static let bodyLength = 25

    /// Formats `uuid` with the kind's prefix.
    public static func format(_ uuid: UUID, as kind: IDKind) -> String {
        kind.rawValue + base36(uuid)
    }

    /// A new random id of `kind`.
    public static func make(_ kind: IDKind) -> String {
        format(UUID(), as: kind)
    }

    /// Parses an external id of `kind` back to its UUID; nil when the prefix, length or alphabet is wrong.
    public static func parse(_ text: String, as kind: IDKind) -> UUID? {
        guard text.hasPrefix(kind.rawValue) else { return nil }
        let body = Array(text.utf8.dropFirst(kind.rawValue.utf8.count))
        guard body.count == bodyLength else { return nil }
        // 128-bit big-endian accumulator as two UInt64 halves.
        var hi: UInt64 = 0, lo: UInt64 = 0
        for c in body {
            let digit: UInt64
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt64(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): digit = UInt64(c - UInt8(ascii: "a") + 10)
            default: return nil
            }
            // (hi,lo) = (hi,lo) * 36 + digit, failing on overflow past 128 bits.
            let loProduct = lo.multipliedFullWidth(by: 36)
            let hiProduct = hi.multipliedReportingOverflow(by: 36)
            guard !hiProduct.overflow else { return nil }
            let (newHi, o1) = hiProduct.partialValue.addingReportingOverflow(loProduct.high)
            guard !o1 else { return nil }
            let (newLo, carry) = loProduct.low.addingReportingOverflow(digit)
            let (finalHi, o2) = newHi.addingReportingOverflow(carry ? 1 : 0)
            guard !o2 else { return nil }
            hi = finalHi
            lo = newLo
        }
        var bytes = [UInt8](repeating: 0, count: 16)
        for i in 0..<8 {
            bytes[i] = UInt8(truncatingIfNeeded: hi >> (56 - 8 * UInt64(i)))
            bytes[8 + i] = UInt8(truncatingIfNeeded: lo >> (56 - 8 * UInt64(i)))
        }
        return UUID(uuid: (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                           bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]))
    }

    static func base36(_ uuid: UUID) -> String {
        let u = uuid.uuid
        let b = [u.0, u.1, u.2, u.3, u.4, u.5, u.6, u.7, u.8, u.9, u.10, u.11, u.12, u.13, u.14, u.15]
        var hi: UInt64 = 0, lo: UInt64 = 0
        for i in 0..<8 { hi = hi << 8 | UInt64(b[i]); lo = lo << 8 | UInt64(b[8 + i]) }
        var digits = [UInt8](repeating: alphabet[0], count: bodyLength)
        var index = bodyLength - 1
        while hi != 0 || lo != 0 {
            // Divide the 128-bit value by 36.
            let qHi = hi / 36
            let rHi = hi % 36
            let (qLo, r) = UInt64(36).dividingFullWidth((high: rHi, low: lo))
            hi = qHi
            lo = qLo
            digits[index] = alphabet[Int(r)]
            index -= 1
        }
        return String(decoding: digits, as: UTF8.self)
    }
}
