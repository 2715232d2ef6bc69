import Crypto
import Foundation

/// Random tokens, hashes and constant-time comparison for every secret the control plane handles.
enum Secrets {
    /// `count` random bytes as lowercase hex.
    static func randomHex(bytes count: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return hex((0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
    }

    /// Hex SHA-256 of `text`: how tokens, session ids and API keys are stored at rest.
    static func sha256Hex(_ text: String) -> String {
        hex(Array(SHA256.hash(data: Data(text.utf8))))
    }

    /// HMAC-SHA256 of `message` keyed by `key`, hex.
    static func hmacHex(_ message: String, key: SymmetricKey) -> String {
        hex(Array(HMAC<SHA256>.authenticationCode(for: Data(message.utf8), using: key)))
    }

    /// Compares two strings in time independent of where they differ.
    static func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var diff = UInt8(x.count == y.count ? 0 : 1)
        let n = max(x.count, y.count)
        for i in 0..<n {
            let l = i < x.count ? x[i] : 0
            let r = i < y.count ? y[i] : 0
            diff |= l ^ r
        }
        return diff == 0
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 0xf)]) }
        return String(decoding: out, as: UTF8.self)
    }
}
