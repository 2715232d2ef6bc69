import Foundation
import NIOConcurrencyHelpers

/// The control plane's notion of "now", injectable so tests can move time (session expiry, token TTLs, purges).
public protocol WallClock: Sendable {
    func now() -> Date
}

/// The real clock.
public struct SystemWallClock: WallClock {
    public init() {}
    public func now() -> Date { Date() }
}

/// A clock tests can set and advance.
public final class ManualWallClock: WallClock {
    private let current: NIOLockedValueBox<Date>
    public init(_ start: Date = Date()) { current = NIOLockedValueBox(start) }
    public func now() -> Date { current.withLockedValue { $0 } }
    public func advance(by seconds: TimeInterval) { current.withLockedValue { $0 += seconds } }
}

extension Date {
    /// Milliseconds since 1970, the database's time unit.
    var millis: Int64 { Int64((timeIntervalSince1970 * 1000).rounded(.down)) }
    init(millis: Int64) { self.init(timeIntervalSince1970: TimeInterval(millis) / 1000) }
}
