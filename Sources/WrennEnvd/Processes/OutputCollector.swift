import Foundation
import NIOCore
import Synchronization
import WrennWire

/// Foreground exec output: up to `cap` bytes per stream are kept, the rest is read and discarded so the
/// child never blocks on a full pipe.
final class OutputCollector: Sendable {
    private struct State {
        var stdout = ByteBuffer()
        var stderr = ByteBuffer()
        var stdoutTruncated = false
        var stderrTruncated = false
    }

    private let cap: Int
    private let state = Mutex(State())

    init(cap: Int) {
        self.cap = cap
    }

    func add(_ channel: OutputChannel, _ chunk: ByteBuffer) {
        state.withLock { s in
            var chunk = chunk
            switch channel {
            case .stdout, .pty:
                let room = cap - s.stdout.readableBytes
                if chunk.readableBytes > room { s.stdoutTruncated = true }
                if room > 0, var slice = chunk.readSlice(length: min(room, chunk.readableBytes)) {
                    s.stdout.writeBuffer(&slice)
                }
            case .stderr:
                let room = cap - s.stderr.readableBytes
                if chunk.readableBytes > room { s.stderrTruncated = true }
                if room > 0, var slice = chunk.readSlice(length: min(room, chunk.readableBytes)) {
                    s.stderr.writeBuffer(&slice)
                }
            }
        }
    }

    /// Both streams as UTF-8 text, or both base64 when either is not valid UTF-8.
    func encoded() -> (stdout: String, stderr: String, encoding: OutputEncoding, stdoutTruncated: Bool, stderrTruncated: Bool) {
        let s = state.withLock { $0 }
        if let out = String(validating: s.stdout.readableBytesView, as: UTF8.self),
            let err = String(validating: s.stderr.readableBytesView, as: UTF8.self)
        {
            return (out, err, .utf8, s.stdoutTruncated, s.stderrTruncated)
        }
        return (
            Data(s.stdout.readableBytesView).base64EncodedString(),
            Data(s.stderr.readableBytesView).base64EncodedString(),
            .base64, s.stdoutTruncated, s.stderrTruncated
        )
    }
}
