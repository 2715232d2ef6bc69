import Crypto
import Foundation

/// Encrypts channel config values at rest: AES-256-GCM per value, a random 12-byte nonce each, stored as
/// `base64(nonce ‖ ciphertext ‖ tag)`. The channel id and field name are authenticated data, so a value cannot be
/// moved to another field or channel without failing to open.
struct ChannelCipher: Sendable {
    let key: SymmetricKey

    init(key: Data) { self.key = SymmetricKey(data: key) }

    /// The config as stored: a JSON object of field → sealed value.
    func seal(_ config: [String: String], channel: String) throws -> String {
        var sealed: [String: String] = [:]
        for (field, value) in config {
            let box = try AES.GCM.seal(Data(value.utf8), using: key, authenticating: Data("\(channel):\(field)".utf8))
            guard let combined = box.combined else { throw ChannelCipherError("cannot seal config.\(field)") }
            sealed[field] = combined.base64EncodedString()
        }
        let data = try JSONEncoder.sorted.encode(sealed)
        return String(decoding: data, as: UTF8.self)
    }

    /// The plaintext config of a stored row.
    func open(_ stored: String, channel: String) throws -> [String: String] {
        let sealed = try JSONDecoder().decode([String: String].self, from: Data(stored.utf8))
        var config: [String: String] = [:]
        for (field, text) in sealed {
            guard let combined = Data(base64Encoded: text) else { throw ChannelCipherError("config.\(field) is not base64") }
            let box = try AES.GCM.SealedBox(combined: combined)
            let plain = try AES.GCM.open(box, using: key, authenticating: Data("\(channel):\(field)".utf8))
            config[field] = String(decoding: plain, as: UTF8.self)
        }
        return config
    }
}

struct ChannelCipherError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension JSONEncoder {
    /// Sorted keys, so stored JSON is stable.
    static var sorted: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }
}
