import Foundation

// Wire types of the `channels` tag: team notification channels (chat services and signed webhooks).

/// `CreateChannelRequest`. `provider` and `events` are plain strings here so the server can answer a wrong value
/// with a 400 that names the field.
public struct CreateChannelRequest: Codable, Sendable, Equatable {
    public var name: String
    public var provider: String
    public var config: [String: String]
    public var events: [String]
    public init(name: String, provider: String, config: [String: String], events: [String]) {
        self.name = name; self.provider = provider; self.config = config; self.events = events
    }
}

/// `TestChannelRequest`: a provider and config to send one `channel.test` notification to, nothing saved.
public struct TestChannelRequest: Codable, Sendable, Equatable {
    public var provider: String
    public var config: [String: String]
    public init(provider: String, config: [String: String]) { self.provider = provider; self.config = config }
}

/// `RotateConfigRequest`: the provider config that replaces the channel's entirely.
public struct RotateChannelConfigRequest: Codable, Sendable, Equatable {
    public var config: [String: String]
    public init(config: [String: String]) { self.config = config }
}

/// `UpdateChannelRequest`.
public struct UpdateChannelRequest: Codable, Sendable, Equatable {
    public var name: String
    public var events: [String]
    public init(name: String, events: [String]) { self.name = name; self.events = events }
}

/// `ChannelResponse`. The provider config is never returned; `secret` carries a webhook's signing secret once, in the
/// response that created it.
public struct ChannelResponse: Codable, Sendable, Equatable {
    public var id: String
    public var teamId: String
    public var name: String
    public var provider: String
    public var events: [String]
    public var createdAt: Date
    public var updatedAt: Date
    public var secret: String?
    public init(id: String, teamId: String, name: String, provider: String, events: [String], createdAt: Date, updatedAt: Date,
                secret: String?) {
        self.id = id; self.teamId = teamId; self.name = name; self.provider = provider; self.events = events
        self.createdAt = createdAt; self.updatedAt = updatedAt; self.secret = secret
    }
    enum CodingKeys: String, CodingKey {
        case id, teamId = "team_id", name, provider, events, createdAt = "created_at", updatedAt = "updated_at", secret
    }
}

/// The `200` body of `POST /v1/channels/test`.
public struct ChannelTestResult: Codable, Sendable, Equatable {
    public var status: String
    public init(status: String) { self.status = status }
}

/// The JSON body a `webhook` channel POSTs: the event as the SSE stream shows it, plus the team and the delivery id
/// (the same value as the `X-Wrenn-Delivery` header, stable across retries of one event).
public struct ChannelWebhookBody: Codable, Sendable, Equatable {
    public var deliveryId: String
    public var teamId: String
    public var event: SSEEvent
    public init(deliveryId: String, teamId: String, event: SSEEvent) {
        self.deliveryId = deliveryId; self.teamId = teamId; self.event = event
    }

    enum ExtraKeys: String, CodingKey { case deliveryId = "delivery_id", teamId = "team_id" }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: ExtraKeys.self)
        deliveryId = try c.decode(String.self, forKey: .deliveryId)
        teamId = try c.decode(String.self, forKey: .teamId)
        event = try SSEEvent(from: decoder)
    }

    /// Flat: the event's fields with `delivery_id` and `team_id` beside them.
    public func encode(to encoder: any Encoder) throws {
        try event.encode(to: encoder)
        var c = encoder.container(keyedBy: ExtraKeys.self)
        try c.encode(deliveryId, forKey: .deliveryId)
        try c.encode(teamId, forKey: .teamId)
    }
}
