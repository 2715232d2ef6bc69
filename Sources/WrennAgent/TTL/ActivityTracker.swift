import Synchronization

/// When each capsule was last used, and how many proxied requests or sockets are open on it right now.
///
/// The idle reaper pauses a capsule only when nothing is in flight and the last activity is older than its
/// timeout, so a long foreground exec, a 1 GiB upload or an attached PTY never gets paused under its user.
/// Updated on every proxied chunk and frame, hence a lock rather than an actor.
public final class ActivityTracker: Sendable {
    struct State {
        var lastActivity: ContinuousClock.Instant
        var inFlight: Int
    }

    private let states = Mutex<[String: State]>([:])

    /// Creates an empty tracker.
    public init() {}

    /// Records activity now (creates the entry if needed).
    public func touch(_ id: String) {
        let now = ContinuousClock.now
        states.withLock { states in
            states[id, default: State(lastActivity: now, inFlight: 0)].lastActivity = now
        }
    }

    /// Marks the start of a proxied request or socket; activity lasts until the lease is released (or dropped).
    public func begin(_ id: String) -> ActivityLease {
        let now = ContinuousClock.now
        states.withLock { states in
            var state = states[id, default: State(lastActivity: now, inFlight: 0)]
            state.inFlight += 1
            state.lastActivity = now
            states[id] = state
        }
        return ActivityLease(tracker: self, id: id)
    }

    fileprivate func end(_ id: String) {
        let now = ContinuousClock.now
        states.withLock { states in
            guard var state = states[id] else { return }
            state.inFlight = max(0, state.inFlight - 1)
            state.lastActivity = now
            states[id] = state
        }
    }

    /// Forgets a capsule (destroyed).
    public func remove(_ id: String) {
        _ = states.withLock { $0.removeValue(forKey: id) }
    }

    /// How long the capsule has been idle, or `nil` while something is in flight. A capsule never seen counts
    /// as active now (the caller should `touch` it when it starts running).
    public func idleTime(_ id: String, now: ContinuousClock.Instant = .now) -> Duration? {
        states.withLock { states in
            guard let state = states[id] else {
                states[id] = State(lastActivity: now, inFlight: 0)
                return .zero
            }
            return state.inFlight > 0 ? nil : now - state.lastActivity
        }
    }

    /// Number of open proxied requests and sockets on a capsule.
    public func inFlight(_ id: String) -> Int {
        states.withLock { $0[id]?.inFlight ?? 0 }
    }
}

/// One proxied request or socket in flight; releasing it (or dropping the last reference) ends it exactly once.
public final class ActivityLease: Sendable {
    private let tracker: ActivityTracker
    /// Capsule id.
    public let id: String
    private let released = Atomic<Bool>(false)

    fileprivate init(tracker: ActivityTracker, id: String) {
        self.tracker = tracker
        self.id = id
    }

    /// Records activity on the capsule (a chunk or frame went through).
    public func touch() { tracker.touch(id) }

    /// Ends the lease (idempotent).
    public func release() {
        if released.exchange(true, ordering: .acquiringAndReleasing) == false {
            tracker.end(id)
        }
    }

    deinit { release() }
}
