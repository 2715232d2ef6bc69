import Synchronization

/// Counts what is in flight per key (a team, a principal) and overall, and refuses beyond the limits with 429
/// `too_many_requests` and `Retry-After`. A ``Permit`` gives its place back when released or dropped.
final class ConcurrencyLimiter: Sendable {
    private struct State {
        var byKey: [String: Int] = [:]
        var total = 0
    }

    let perKey: Int
    let overall: Int?
    let what: String
    let retryAfter: Int
    private let state = Mutex(State())

    init(perKey: Int, overall: Int? = nil, what: String, retryAfter: Int) {
        self.perKey = perKey
        self.overall = overall
        self.what = what
        self.retryAfter = retryAfter
    }

    /// A place for `key`, or 429.
    func acquire(_ key: String) throws -> Permit {
        let refusal: String? = state.withLock { s in
            if let overall, s.total >= overall { return "the server has \(overall) \(what) open; try again shortly" }
            guard s.byKey[key, default: 0] < perKey else { return "at most \(perKey) \(what) may be open at once; try again when one ends" }
            s.byKey[key, default: 0] += 1
            s.total += 1
            return nil
        }
        if let refusal { throw ServiceError.tooManyRequests(refusal, retryAfter: retryAfter) }
        return Permit(limiter: self, key: key)
    }

    /// What `key` holds now.
    func inFlight(_ key: String) -> Int { state.withLock { $0.byKey[key, default: 0] } }

    fileprivate func release(_ key: String) {
        state.withLock { s in
            s.total -= 1
            let left = s.byKey[key, default: 1] - 1
            s.byKey[key] = left > 0 ? left : nil
        }
    }
}

/// One place in a ``ConcurrencyLimiter``.
final class Permit: Sendable {
    private let limiter: ConcurrencyLimiter
    private let key: String
    private let released = Atomic(false)

    fileprivate init(limiter: ConcurrencyLimiter, key: String) {
        self.limiter = limiter
        self.key = key
    }

    /// Gives the place back (once).
    func release() {
        if !released.exchange(true, ordering: .acquiringAndReleasing) { limiter.release(key) }
    }

    deinit { release() }
}
