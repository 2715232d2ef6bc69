import Crypto
import Foundation
import WrennWire

/// One event on its way to one channel: what happened, for which team, and the delivery id that names this
/// (channel, event) pair across retries.
struct ChannelNotification: Sendable {
    var deliveryID: String
    var team: String
    var event: SSEEvent

    /// The delivery id of event `seq` to `channel`: a UUID derived from both, so every retry carries the same id and a
    /// receiver can drop duplicates (delivery is at least once).
    static func deliveryID(channel: String, seq: Int64) -> String {
        let digest = Array(SHA256.hash(data: Data("\(channel):\(seq)".utf8)))
        var b = Array(digest.prefix(16))
        b[6] = (b[6] & 0x0f) | 0x50 // version 5-style (name-based)
        b[8] = (b[8] & 0x3f) | 0x80
        return UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
            .uuidString.lowercased()
    }

    /// One line saying what happened, e.g. "Capsule paused".
    var summary: String {
        let failed = event.outcome == "error"
        let what: String
        switch event.event {
        case "capsule.create": what = failed ? "Capsule creation failed" : "Capsule created"
        case "capsule.pause": what = failed ? "Capsule pause failed" : "Capsule paused"
        case "capsule.resume": what = failed ? "Capsule resume failed" : "Capsule resumed"
        case "capsule.destroy": what = failed ? "Capsule destroy failed" : "Capsule destroyed"
        case "template.snapshot.create": what = failed ? "Snapshot failed" : "Snapshot created"
        case "template.snapshot.delete": what = "Snapshot deleted"
        case "host.up": what = "Host is up"
        case "host.down": what = "Host is down"
        case "channel.test": what = "Test notification from Wrenn"
        default: what = event.event
        }
        return what
    }

    /// The labelled facts under the summary, in display order.
    var facts: [(String, String)] {
        var lines: [(String, String)] = []
        lines.append(("Event", event.outcome.map { "\(event.event) (\($0))" } ?? event.event))
        if let r = event.resource { lines.append(("Resource", "\(r.type) \(r.id)")) }
        if let a = event.actor { lines.append(("Actor", [a.type, a.name ?? a.id].compactMap { $0 }.joined(separator: " "))) }
        lines.append(("Team", team))
        if let error = event.error { lines.append(("Error", error)) }
        lines.append(("Time", WireCoding.formatDate(event.timestamp)))
        return lines
    }

    /// The plain-text message chat services show.
    var text: String {
        (["Wrenn: \(summary)"] + facts.map { "\($0.0): \($0.1)" }).joined(separator: "\n")
    }
}
