import Synchronization
import WrennHTTP

/// The capsule's identity and defaults, replaceable after a snapshot restore. Thread-safe.
final class EnvdIdentity: Sendable {
    struct Value: Sendable {
        var accessToken: String
        var capsuleID: String?
        var defaultUser: String?
        var defaultEnv: [String: String]
    }

    private let state: Mutex<Value>

    init(_ value: Value) {
        self.state = Mutex(value)
    }

    /// A consistent copy of every field.
    var current: Value {
        state.withLock { $0 }
    }

    /// Applies a change atomically.
    func update(_ change: (inout Value) -> Void) {
        state.withLock { change(&$0) }
    }

    /// True when `presented` equals the current token, compared in time independent of where they differ.
    func accepts(token presented: Substring) -> Bool {
        let expected = state.withLock { $0.accessToken }
        return ConstantTime.equal(Array(presented.utf8), Array(expected.utf8))
    }
}
