import Foundation
import NIOHTTP1
import WrennWire

/// The HTTP request that delivers one notification to one provider, in the format that service expects:
/// Discord `content` + an embed, Slack `text` + blocks, Teams a MessageCard, Google Chat `text`, Telegram Bot API
/// `sendMessage`, Matrix client-server `m.room.message` (idempotent by transaction id), webhook the signed event JSON.
struct ProviderRequest: Sendable {
    var method: HTTPMethod
    var url: String
    var headers: [(String, String)]
    var body: Data

    /// Builds the request; `telegramAPIURL` is the Bot API base, `now` the signing time of webhooks.
    static func make(provider: ChannelProvider, config: [String: String], notification n: ChannelNotification,
                     telegramAPIURL: String, now: Date) throws -> ProviderRequest {
        let json = [("Content-Type", "application/json")]
        func field(_ name: String) throws -> String {
            guard let v = config[name], !v.isEmpty else { throw ChannelDeliveryError.misconfigured("config.\(name) missing") }
            return v
        }
        switch provider {
        case .discord:
            let embed: [String: Any] = [
                "title": n.summary,
                "fields": n.facts.map { ["name": $0.0, "value": String($0.1.prefix(1024)), "inline": false] as [String: Any] },
                "timestamp": WireCoding.formatDate(n.event.timestamp),
                "color": n.event.outcome == "error" ? 0xD0312D : 0x2E8B57,
            ]
            let body: [String: Any] = ["content": String(n.text.prefix(2000)), "embeds": [embed]]
            return .init(method: .POST, url: try field("webhook_url"), headers: json, body: try encode(body))
        case .slack:
            let blocks: [[String: Any]] = [
                ["type": "header", "text": ["type": "plain_text", "text": String(n.summary.prefix(150))]],
                ["type": "section", "fields": n.facts.prefix(10).map { ["type": "mrkdwn", "text": "*\($0.0)*\n\($0.1)"] }],
            ]
            let body: [String: Any] = ["text": n.text, "blocks": blocks]
            return .init(method: .POST, url: try field("webhook_url"), headers: json, body: try encode(body))
        case .teams:
            let body: [String: Any] = [
                "@type": "MessageCard", "@context": "https://schema.org/extensions",
                "summary": n.summary, "title": "Wrenn: \(n.summary)",
                "themeColor": n.event.outcome == "error" ? "D0312D" : "2E8B57",
                "sections": [["facts": n.facts.map { ["name": $0.0, "value": $0.1] }]],
                "text": n.text.replacingOccurrences(of: "\n", with: "  \n"),
            ]
            return .init(method: .POST, url: try field("webhook_url"), headers: json, body: try encode(body))
        case .googlechat:
            return .init(method: .POST, url: try field("webhook_url"), headers: [("Content-Type", "application/json; charset=UTF-8")],
                         body: try encode(["text": n.text]))
        case .telegram:
            var base = telegramAPIURL
            while base.hasSuffix("/") { base.removeLast() }
            let url = "\(base)/bot\(try field("bot_token"))/sendMessage"
            let body: [String: Any] = ["chat_id": try field("chat_id"), "text": n.text, "disable_web_page_preview": true]
            return .init(method: .POST, url: url, headers: json, body: try encode(body))
        case .matrix:
            var base = try field("homeserver_url")
            while base.hasSuffix("/") { base.removeLast() }
            let room = try field("room_id").addingPercentEncoding(withAllowedCharacters: .urlUnreserved) ?? ""
            let txn = n.deliveryID.addingPercentEncoding(withAllowedCharacters: .urlUnreserved) ?? n.deliveryID
            let url = "\(base)/_matrix/client/v3/rooms/\(room)/send/m.room.message/\(txn)"
            let body: [String: Any] = ["msgtype": "m.text", "body": n.text]
            return .init(method: .PUT, url: url, headers: json + [("Authorization", "Bearer \(try field("access_token"))")],
                         body: try encode(body))
        case .webhook:
            let body = try WireCoding.makeEncoder().encode(ChannelWebhookBody(deliveryId: n.deliveryID, teamId: n.team, event: n.event))
            let timestamp = WebhookSigner.timestamp(now)
            let headers = json + [
                (WebhookSigner.timestampHeader, timestamp),
                (WebhookSigner.signatureHeader, WebhookSigner.signature(secret: try field("secret"), timestamp: timestamp, body: body)),
                (WebhookSigner.deliveryHeader, n.deliveryID),
                (WebhookSigner.eventHeader, n.event.event),
                ("User-Agent", "Wrenn-Webhooks/1"),
            ]
            return .init(method: .POST, url: try field("url"), headers: headers, body: body)
        }
    }

    static func encode(_ object: [String: Any]) throws -> Data {
        try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
    }
}

extension CharacterSet {
    /// RFC 3986 unreserved characters: what a path segment may carry unescaped.
    static let urlUnreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
}
