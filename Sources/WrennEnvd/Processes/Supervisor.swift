import Foundation
import NIOCore
import Synchronization

/// Watches one child: pumps its pipes (or PTY) into a sink, enforces the timeout by killing the process
/// group, reaps it, and gives its pipes a short grace to drain after exit.
enum Supervisor {
    /// One descriptor to read and what to call its output.
    struct Source: Sendable {
        let fd: Int32
        let channel: OutputChannel
    }

    static func run(
        pid: pid_t,
        sources: [Source],
        ptyInput: AsyncStream<ByteBuffer>? = nil,
        timeout: Duration?,
        grace: Duration,
        sink: @escaping @Sendable (OutputChannel, ByteBuffer) -> Void
    ) async -> ExitInfo {
        let pumps = Task {
            await withTaskGroup(of: Void.self) { group in
                for source in sources {
                    group.addTask {
                        if source.channel == .pty {
                            await PipeReader.drain(fd: source.fd, input: ptyInput) { sink(.pty, $0) }
                        } else {
                            let splitter = Mutex(UTF8Boundary())
                            await PipeReader.drain(fd: source.fd) { chunk in
                                let ready = splitter.withLock { $0.feed(chunk) }
                                if ready.readableBytes > 0 { sink(source.channel, ready) }
                            }
                            let rest = splitter.withLock { $0.flush() }
                            if rest.readableBytes > 0 { sink(source.channel, rest) }
                        }
                    }
                }
            }
        }
        let timedOut = TimeoutFlag()
        let timer: Task<Void, Never>? = timeout.map { limit in
            Task {
                do {
                    try await Task.sleep(for: limit)
                    timedOut.set()
                    _ = kill(-pid, SIGKILL)
                } catch {}
            }
        }
        var exit = await ExitWaiter.wait(for: pid)
        timer?.cancel()
        exit.timedOut = timedOut.isSet

        // Grandchildren may keep the pipes open; wait a little, then stop reading.
        let drained = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await pumps.value
                return true
            }
            group.addTask {
                try? await Task.sleep(for: grace)
                return false
            }
            let first = await group.next() ?? true
            if !first { pumps.cancel() }
            group.cancelAll()
            return first
        }
        _ = drained
        return exit
    }
}

/// Set once by the timeout timer, read after the exit.
final class TimeoutFlag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}
