import Foundation
import Synchronization

/// envd's processes by tag: background jobs, exec streams and PTY sessions. Tags are unique among
/// processes that are running (or reserved while starting); exited ones stay attachable until pruned.
final class ProcessTable: Sendable {
    private struct State {
        var byTag: [String: ManagedProcess] = [:]
        var reserved: Set<String> = []
    }

    private let state = Mutex(State())

    /// Claims `tag` for a process about to start; 409 when a live process (or a starting one) has it.
    func reserve(_ tag: String) throws(EnvdError) {
        try state.withLock { (s: inout State) throws(EnvdError) in
            if s.reserved.contains(tag) || (s.byTag[tag]?.isRunning ?? false) {
                throw EnvdError.conflict("a process with tag '\(tag)' is already running")
            }
            s.reserved.insert(tag)
        }
    }

    /// Gives a reserved tag back (the start failed).
    func release(_ tag: String) {
        _ = state.withLock { $0.reserved.remove(tag) }
    }

    /// Records a started process under its reserved tag.
    func insert(_ process: ManagedProcess) {
        state.withLock { s in
            s.reserved.remove(process.tag)
            s.byTag[process.tag] = process
        }
    }

    /// Finds by tag, or by pid when `selector` is numeric (running processes first).
    func find(_ selector: String) -> ManagedProcess? {
        state.withLock { s in
            if let pid = pid_t(selector) {
                let matches = s.byTag.values.filter { $0.pid == pid }
                return matches.first(where: \.isRunning) ?? matches.first
            }
            return s.byTag[selector]
        }
    }

    /// The process with `tag` when it is of `kind`.
    func find(tag: String, kind: ManagedProcess.Kind) -> ManagedProcess? {
        state.withLock { s in s.byTag[tag].flatMap { $0.kind == kind ? $0 : nil } }
    }

    /// Every process envd knows (running or retained).
    var all: [ManagedProcess] { state.withLock { Array($0.byTag.values) } }

    /// Forgets processes that exited more than `retention` ago.
    func prune(retention: Duration) {
        let now = ContinuousClock.now
        state.withLock { s in
            s.byTag = s.byTag.filter { _, process in
                guard let at = process.exitedAt else { return true }
                return now - at < retention
            }
        }
    }

    /// A fresh `prefix` + 8 hex tag that no process has.
    func newTag(prefix: String) -> String {
        while true {
            let tag = prefix + String(UInt32.random(in: .min ... .max), radix: 16).leftPadded(to: 8)
            let taken = state.withLock { $0.byTag[tag] != nil || $0.reserved.contains(tag) }
            if !taken { return tag }
        }
    }

    /// Checks a caller-chosen tag: 1–128 printable characters without `/`, not all digits (that is a pid).
    static func validate(tag: String) throws(EnvdError) {
        guard !tag.isEmpty, tag.count <= 128 else { throw .invalid("tag must be 1 to 128 characters") }
        guard tag.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7f && $0 != "/" }) else {
            throw .invalid("tag must not contain spaces, control characters or '/'")
        }
        guard pid_t(tag) == nil else { throw .invalid("tag must not be a number (numbers select pids)") }
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
