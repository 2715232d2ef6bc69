import Crypto
import Foundation

/// Signs webhook deliveries: `X-Wrenn-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`, where
/// `timestamp` is the exact `X-Wrenn-Timestamp` header value (RFC 3339 UTC, seconds). Receivers recompute it over the
/// raw body, compare in constant time, and reject stale timestamps.
enum WebhookSigner {
    static let signatureHeader = "X-Wrenn-Signature"
    static let timestampHeader = "X-Wrenn-Timestamp"
    static let deliveryHeader = "X-Wrenn-Delivery"
    static let eventHeader = "X-Wrenn-Event"

    /// The timestamp header value for `date`, e.g. `2026-11-29T12:00:00Z`.
    static func timestamp(_ date: Date) -> String {
        date.formatted(.iso8601)
    }

    /// The signature header value for `body` sent at `timestamp`.
    static func signature(secret: String, timestamp: String, body: Data) -> String {
        var message = Data(timestamp.utf8)
        message.append(UInt8(ascii: "."))
        message.append(body)
        let mac = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: Data(secret.utf8)))
        return "sha256=" + Secrets.hex(Array(mac))
    }
}
