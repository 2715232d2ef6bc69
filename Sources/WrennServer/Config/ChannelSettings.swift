import Foundation
import WrennImage

/// Settings of notification channels: the key their provider configs are encrypted with, where the Telegram Bot API
/// lives, and the delivery worker's timing.
public struct ChannelSettings: Sendable {
    /// 32 bytes for AES-256-GCM (`WRENN_ENCRYPTION_KEY`: 64 hex characters or base64 of 32 bytes). Without it no
    /// channel can be created, and the control plane refuses to start when channels already exist.
    public var encryptionKey: Data?
    /// Base URL of the Telegram Bot API (`WRENN_TELEGRAM_API_URL`); overridable so tests reach a loopback server.
    public var telegramAPIURL: String
    /// How often the delivery worker looks for new events.
    public var pollInterval: Duration
    /// First retry delay after a failed delivery; doubled per attempt up to `retryMaxDelay`.
    public var retryBaseDelay: Duration
    public var retryMaxDelay: Duration
    /// Attempts per event before it is given up (logged, recorded on the channel) so the channel can move on.
    public var maxAttempts: Int
    /// Deadline of one request to a receiver.
    public var requestTimeout: Duration
    /// Whether receivers may be loopback, private or link-local addresses (`WRENN_CHANNELS_ALLOW_PRIVATE=1`);
    /// by default only public addresses receive notifications (`ReceiverAddress`).
    public var allowPrivateReceivers: Bool

    public init(encryptionKey: Data? = nil, telegramAPIURL: String = "https://api.telegram.org",
                pollInterval: Duration = .seconds(1), retryBaseDelay: Duration = .seconds(2), retryMaxDelay: Duration = .seconds(300),
                maxAttempts: Int = 10, requestTimeout: Duration = .seconds(10), allowPrivateReceivers: Bool = false) {
        self.encryptionKey = encryptionKey
        self.telegramAPIURL = telegramAPIURL
        self.pollInterval = pollInterval
        self.retryBaseDelay = retryBaseDelay
        self.retryMaxDelay = retryMaxDelay
        self.maxAttempts = maxAttempts
        self.requestTimeout = requestTimeout
        self.allowPrivateReceivers = allowPrivateReceivers
    }

    /// Parses `WRENN_ENCRYPTION_KEY`: 64 hex characters, or base64 (standard or URL-safe) of exactly 32 bytes.
    public static func parseKey(_ text: String) throws -> Data {
        let t = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if t.count == 64, t.allSatisfy(\.isHexDigit) {
            var bytes = [UInt8]()
            var index = t.startIndex
            while index < t.endIndex {
                let next = t.index(index, offsetBy: 2)
                guard let byte = UInt8(t[index..<next], radix: 16) else { break }
                bytes.append(byte)
                index = next
            }
            if bytes.count == 32 { return Data(bytes) }
        }
        var b64 = t.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while b64.count % 4 != 0 { b64 += "=" }
        if let data = Data(base64Encoded: b64), data.count == 32 { return data }
        throw ConfigError("WRENN_ENCRYPTION_KEY must be 32 bytes: 64 hex characters or base64 (e.g. `openssl rand -hex 32`)")
    }

    /// The key persisted in `<data>/encryption-key` (mode 0600, 64 hex), created on first use: how `wrenn dev` works
    /// out of the box. A production install sets `WRENN_ENCRYPTION_KEY` instead (and keeps it: channels created with
    /// one key cannot be read with another).
    public static func loadOrCreateKeyFile(dataDirectory: String) throws -> String {
        let path = (dataDirectory as NSString).appendingPathComponent("encryption-key")
        if let existing = try? String(contentsOfFile: path, encoding: .utf8) {
            let text = existing.trimmingCharacters(in: .whitespacesAndNewlines)
            if (try? parseKey(text)) != nil { return text }
        }
        let key = Secrets.randomHex(bytes: 32)
        do { try DurableFile.write(Data((key + "\n").utf8), to: path, permissions: 0o600) } catch {
            throw ConfigError("cannot write \(path): \(error)")
        }
        return key
    }
}
