import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import WrennWire

/// Delivers the durable event log to notification channels.
///
/// Each channel has a cursor (`delivered_seq`) in the event log. Every `pollInterval` the worker starts one task per
/// channel that is idle and not backing off; the task walks the team's events after the cursor in order, delivers the
/// subscribed kinds, and moves the cursor past each event once it is delivered (so delivery is at least once, and a
/// restart resumes where it stopped). A failed delivery stops that channel: the event is retried after an exponential
/// backoff (`retryBaseDelay` doubled per attempt, capped at `retryMaxDelay`) before any later event, keeping order;
/// after `maxAttempts` it is given up (logged and recorded on the channel) so one dead receiver cannot stall its
/// channel forever. Channels run in separate tasks, so a slow or dead receiver never delays another channel.
/// On graceful shutdown no new deliveries start; one in flight finishes within the request deadline.
public final class ChannelDeliveryService: Service, Sendable {
    let database: Database
    let clock: any WallClock
    let settings: ChannelSettings
    let sender: ChannelSender
    let logger: Logger

    /// Per channel: whether a task is draining it, and when it may be tried again after a failure.
    private struct Slot {
        var busy = false
        var notBefore: ContinuousClock.Instant?
        var updatedAt: Int64 = 0
    }
    private let slots = NIOLockedValueBox([String: Slot]())
    /// Set once migrations have run and the encryption key was checked; nothing is delivered before.
    private let ready = NIOLockedValueBox(false)

    init(database: Database, clock: any WallClock, settings: ChannelSettings, sender: ChannelSender, logger: Logger) {
        self.database = database
        self.clock = clock
        self.settings = settings
        self.sender = sender
        self.logger = logger
    }

    /// Lets deliveries start (the control plane calls it after migrations, before it serves).
    func markReady() { ready.withLockedValue { $0 = true } }

    public func run() async throws {
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled, !Task.isShuttingDownGracefully {
                if !ready.withLockedValue({ $0 }) {
                    try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(50)) }
                    continue
                }
                do {
                    let channels = try await database.read { sql in try await ChannelRepository.all(sql) }
                    forget(except: Set(channels.map(\.id)))
                    for channel in channels where claim(channel) {
                        group.addTask {
                            let failedAttempts = await self.drain(channel.id)
                            self.release(channel.id, failedAttempts: failedAttempts)
                        }
                    }
                } catch {
                    logger.error("channel delivery: cannot read channels", metadata: ["error": "\(error)"])
                }
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.settings.pollInterval) }
            }
        }
    }

    /// Marks `channel` busy if it is idle and not backing off. A changed channel (rotated config) is tried at once.
    private func claim(_ channel: ChannelRecord) -> Bool {
        slots.withLockedValue { slots in
            var slot = slots[channel.id] ?? Slot()
            if slot.busy { return false }
            if slot.updatedAt != channel.updatedAt { slot.notBefore = nil; slot.updatedAt = channel.updatedAt }
            if let notBefore = slot.notBefore, ContinuousClock.now < notBefore { slots[channel.id] = slot; return false }
            slot.busy = true
            slot.notBefore = nil
            slots[channel.id] = slot
            return true
        }
    }

    private func release(_ id: String, failedAttempts: Int64?) {
        let delay = failedAttempts.map(backoff)
        slots.withLockedValue { slots in
            slots[id]?.busy = false
            slots[id]?.notBefore = delay.map { ContinuousClock.now + $0 }
        }
    }

    private func forget(except live: Set<String>) {
        slots.withLockedValue { slots in
            for id in slots.keys where !live.contains(id) && slots[id]?.busy == false { slots[id] = nil }
        }
    }

    /// The wait before attempt `attempts + 1`: base × 2^(attempts − 1), at most `retryMaxDelay`.
    func backoff(_ attempts: Int64) -> Duration {
        let exponent = Int(max(0, min(attempts - 1, 30)))
        let delay = settings.retryBaseDelay * (1 << exponent)
        return min(delay, settings.retryMaxDelay)
    }

    /// Delivers the channel's pending events in order; returns nil when caught up (or stopped by shutdown), or the
    /// number of failed attempts at the event it stopped on. The row is read afresh here, so the cursor is the one
    /// the previous drain left, never a copy read before it finished.
    func drain(_ id: String) async -> Int64? {
        let found: ChannelRecord?
        do {
            found = try await database.read { sql in try await ChannelRepository.find(id: id, sql) }
        } catch {
            logger.error("channel delivery: database error", metadata: ["channel": "\(id)", "error": "\(error)"])
            return 1
        }
        guard let channel = found else { return nil }
        let kinds = Set(ChannelService.decodeEvents(channel.eventTypes))
        var cursor = channel.deliveredSeq
        var saved = cursor
        var attempts = channel.attempts
        do {
            while !Task.isCancelled, !Task.isShuttingDownGracefully {
                let from = cursor
                let batch = try await database.read { sql in
                    try await EventRepository.after(seq: from, team: channel.teamId, limit: 100, sql)
                }
                if batch.isEmpty { break }
                for event in batch {
                    if Task.isCancelled || Task.isShuttingDownGracefully { break }
                    guard kinds.contains(event.kind) else { cursor = event.seq; continue }
                    do {
                        try await deliver(event, to: channel)
                    } catch {
                        attempts += 1
                        let message = String("\(error)".prefix(500))
                        if attempts < settings.maxAttempts {
                            logger.warning("channel delivery failed; will retry", metadata: [
                                "channel": "\(channel.id)", "seq": "\(event.seq)", "attempt": "\(attempts)", "error": "\(message)"])
                            let c = cursor, a = attempts
                            try await database.read { sql in
                                try await ChannelRepository.advance(id: channel.id, to: c, sql)
                                try await ChannelRepository.recordFailure(id: channel.id, attempts: a, error: message, sql)
                            }
                            saved = cursor
                            return attempts
                        }
                        logger.error("channel delivery given up", metadata: [
                            "channel": "\(channel.id)", "seq": "\(event.seq)", "attempts": "\(attempts)", "error": "\(message)"])
                    }
                    attempts = 0
                    cursor = event.seq
                    let c = cursor
                    try await database.read { sql in try await ChannelRepository.advance(id: channel.id, to: c, sql) }
                    saved = cursor
                }
            }
            if cursor > saved {
                let c = cursor
                try await database.read { sql in try await ChannelRepository.advance(id: channel.id, to: c, sql) }
                saved = cursor
            }
            return nil
        } catch {
            logger.error("channel delivery: database error", metadata: ["channel": "\(channel.id)", "error": "\(error)"])
            return max(attempts, 1)
        }
    }

    /// One delivery attempt of `event` to `channel`.
    func deliver(_ event: EventRecord, to channel: ChannelRecord) async throws {
        guard let provider = ChannelProvider(rawValue: channel.provider) else {
            throw ChannelDeliveryError.misconfigured("unknown provider \(channel.provider)")
        }
        guard let key = settings.encryptionKey else { throw ChannelDeliveryError.misconfigured("WRENN_ENCRYPTION_KEY is not set") }
        let config: [String: String]
        do {
            config = try ChannelCipher(key: key).open(channel.config, channel: channel.id)
        } catch {
            throw ChannelDeliveryError.misconfigured("config cannot be decrypted with WRENN_ENCRYPTION_KEY")
        }
        let payload = try WireCoding.makeDecoder().decode(SSEEvent.self, from: Data(event.payload.utf8))
        let notification = ChannelNotification(deliveryID: ChannelNotification.deliveryID(channel: channel.id, seq: event.seq),
                                                team: channel.teamId, event: payload)
        let request = try ProviderRequest.make(provider: provider, config: config, notification: notification,
                                               telegramAPIURL: settings.telegramAPIURL, now: clock.now())
        try await sender.send(request)
    }
}
