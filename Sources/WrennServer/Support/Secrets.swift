import Crypto
import Foundation
import WrennHTTP

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

    /// Compares two strings in time independent of where they differ (two empty strings are equal).
    static func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        ConstantTime.equal(Array(a.utf8), Array(b.utf8)) || (a.isEmpty && b.isEmpty)
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 0xf)]) }
        return String(decoding: out, as: UTF8.self)
    }
}
