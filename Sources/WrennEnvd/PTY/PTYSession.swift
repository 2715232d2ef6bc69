import CWrennSpawn
import Foundation
import NIOCore
import Synchronization

/// A terminal session: a process on the slave side of a PTY, its scrollback, and the master's controls.
/// It outlives WebSocket connections; reconnecting replays what was printed since the last detach.
final class PTYSession: Sendable {
    let process: ManagedProcess
    private let input: AsyncStream<ByteBuffer>.Continuation
    private let control: Mutex<Int32?>
    private let detachCursor = Mutex<UInt64?>(nil)

    init(process: ManagedProcess, controlFD: Int32, input: AsyncStream<ByteBuffer>.Continuation) {
        self.process = process
        self.control = Mutex(controlFD)
        self.input = input
    }

    var tag: String { process.tag }
    var log: OutputLog { process.log }

    /// Queues keyboard input (written to the master in order).
    func write(_ bytes: ByteBuffer) {
        input.yield(bytes)
    }

    /// Sets the window size; the foreground process group gets SIGWINCH.
    func resize(rows: Int, cols: Int) throws(EnvdError) {
        guard (1...65535).contains(rows), (1...65535).contains(cols) else {
            throw .invalid("cols and rows must be between 1 and 65535")
        }
        let rc: Int32 = control.withLock { fd in
            guard let fd else { return EBADF }
            return wrenn_set_winsize(fd, UInt16(rows), UInt16(cols))
        }
        guard rc == 0 else { throw .invalid("resize failed: \(String(cString: strerror(rc)))") }
    }

    /// Kills the session's process group.
    func kill() {
        process.signal(SIGKILL)
    }

    /// Where a connecting client starts reading: where the last client left, else the oldest byte held.
    func resumeCursor() -> UInt64 {
        detachCursor.withLock { $0 } ?? log.startOffset
    }

    /// Remembers how far the departing client had read.
    func detached(at cursor: UInt64) {
        detachCursor.withLock { $0 = cursor }
    }

    /// Called once the process has exited and its output is drained.
    func ended() {
        input.finish()
        control.withLock { fd in
            if let fd { close(fd) }
            fd = nil
        }
    }
}
