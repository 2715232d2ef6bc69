import Foundation

/// The services a channel can notify, with the config fields each one takes (reference §8).
enum ChannelProvider: String, CaseIterable, Sendable {
    case discord, slack, teams, googlechat, telegram, matrix, webhook

    /// Fields that must be present and non-empty.
    var requiredFields: [String] {
        switch self {
        case .discord, .slack, .teams, .googlechat: ["webhook_url"]
        case .telegram: ["bot_token", "chat_id"]
        case .matrix: ["homeserver_url", "access_token", "room_id"]
        case .webhook: ["url"]
        }
    }

    /// Fields that may be given besides the required ones.
    var optionalFields: [String] { self == .webhook ? ["secret"] : [] }

    /// Fields holding an http(s) URL.
    var urlFields: Set<String> { ["webhook_url", "homeserver_url", "url"] }

    /// The event kinds a channel can subscribe to (the contract's enum).
    static let eventKinds: [String] = [
        "capsule.create", "capsule.pause", "capsule.resume", "capsule.destroy",
        "template.snapshot.create", "template.snapshot.delete", "host.up", "host.down",
    ]

    /// The provider named `raw`, or a 400 naming `provider`.
    static func parse(_ raw: String) throws -> ChannelProvider {
        guard let provider = ChannelProvider(rawValue: raw.trimmingCharacters(in: .whitespaces).lowercased()) else {
            throw ServiceError.invalid("provider: must be one of \(allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return provider
    }

    /// The config with values trimmed, checked against this provider's fields; a webhook without a secret gets a
    /// generated one (64 hex). Errors are 400s naming the field, e.g. `config.webhook_url: required for slack`.
    func validate(_ config: [String: String], allowPrivate: Bool) throws -> [String: String] {
        var result: [String: String] = [:]
        let known = Set(requiredFields + optionalFields)
        for key in config.keys.sorted() where !known.contains(key) {
            throw ServiceError.invalid("config.\(key): not a field of provider \(rawValue) (fields: \((requiredFields + optionalFields).joined(separator: ", ")))")
        }
        for field in requiredFields {
            let value = config[field]?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            guard !value.isEmpty else { throw ServiceError.invalid("config.\(field): required for provider \(rawValue)") }
            guard value.count <= 2048 else { throw ServiceError.invalid("config.\(field): must be at most 2048 characters") }
            if urlFields.contains(field) { try Self.checkURL(value, field: field, allowPrivate: allowPrivate) }
            result[field] = value
        }
        if self == .webhook {
            let secret = config["secret"]?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            if secret.isEmpty {
                result["secret"] = Secrets.randomHex(bytes: 32)
            } else {
                guard secret.count >= 16, secret.count <= 256 else {
                    throw ServiceError.invalid("config.secret: must be 16–256 characters")
                }
                result["secret"] = secret
            }
        }
        if self == .matrix, let room = result["room_id"], !(room.hasPrefix("!") || room.hasPrefix("#")) {
            throw ServiceError.invalid("config.room_id: must be a Matrix room id (!…) or alias (#…)")
        }
        return result
    }

    static func checkURL(_ value: String, field: String, allowPrivate: Bool) throws {
        guard let url = URL(string: value), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = url.host, !host.isEmpty
        else { throw ServiceError.invalid("config.\(field): must be an absolute http(s) URL") }
        if !allowPrivate, let why = ReceiverAddress.literalRefusal(host: host) {
            throw ServiceError.invalid("config.\(field): \(why); receivers must be public unless WRENN_CHANNELS_ALLOW_PRIVATE=1")
        }
    }

    /// Normalizes a channel name as the original did (trimmed, lowercased, spaces → `-`) and checks it is a safe name.
    static func channelName(_ raw: String) throws -> String {
        let name = raw.trimmingCharacters(in: .whitespacesAndNewlines).lowercased().replacingOccurrences(of: " ", with: "-")
        let allowedFirst = Set("abcdefghijklmnopqrstuvwxyz0123456789")
        let allowed = allowedFirst.union("._-")
        guard let first = name.first, allowedFirst.contains(first), name.count <= 64, name.allSatisfy({ allowed.contains($0) }) else {
            throw ServiceError.invalid("name: must be 1–64 characters of letters, digits, '.', '_', '-' (spaces become '-'), starting with a letter or digit")
        }
        return name
    }

    /// The subscribed kinds, deduplicated in the contract's order; a 400 naming the entry for an unknown kind.
    static func eventList(_ raw: [String]) throws -> [String] {
        guard !raw.isEmpty else { throw ServiceError.invalid("events: subscribe to at least one event kind") }
        for (i, kind) in raw.enumerated() where !eventKinds.contains(kind) {
            throw ServiceError.invalid("events[\(i)]: unknown event kind \(kind.debugDescription) (one of \(eventKinds.joined(separator: ", ")))")
        }
        let chosen = Set(raw)
        return eventKinds.filter { chosen.contains($0) }
    }
}
