import Foundation
import NIOConcurrencyHelpers

/// Keeps a capsule's `last_active_at` current while one of its WebSocket streams carries traffic, writing at most
/// once per `every` (the stream's open and close are touched by the route itself).
final class StreamActivity: Sendable {
    static let defaultInterval: TimeInterval = 15
    private let capsules: CapsuleService
    private let id: String
    private let every: TimeInterval
    private let lastTouch: NIOLockedValueBox<Date>

    /// Counts from now: the route touches the capsule as the stream opens.
    init(capsules: CapsuleService, id: String, every: TimeInterval = StreamActivity.defaultInterval) {
        self.capsules = capsules
        self.id = id
        self.every = every
        self.lastTouch = NIOLockedValueBox(capsules.clock.now())
    }

    /// A message passed: touches the capsule if the last touch is `every` or more ago.
    func traffic() async {
        let now = capsules.clock.now()
        let due = lastTouch.withLockedValue { last -> Bool in
            guard now.timeIntervalSince(last) >= every else { return false }
            last = now
            return true
        }
        if due { await capsules.touch(id) }
    }
}
