import NIOCore
import Synchronization

/// Which stream a chunk of output came from.
enum OutputChannel: Sendable, Equatable {
    case stdout, stderr, pty
}

/// A chunk of output.
struct OutputChunk: Sendable {
    let channel: OutputChannel
    let bytes: ByteBuffer
}

/// The bounded output history of one process or PTY: a ring of chunks addressed by absolute byte offsets.
///
/// The producer appends and never blocks (old chunks are evicted once `capacity` bytes are held). Readers
/// keep their own cursor (an absolute offset), so any number of them can follow, a late reader replays
/// whatever is still held, and a reader that falls behind learns exactly how many bytes it missed.
final class OutputLog: Sendable {
    /// What a reader gets: the chunks after its cursor, the bytes it missed, and the exit once all output is in.
    struct Batch: Sendable {
        var chunks: [OutputChunk]
        /// Bytes between the reader's cursor and the oldest chunk still held.
        var dropped: Int
        /// Cursor to pass to the next `read`.
        var next: UInt64
        /// Set when the output is complete and the process has exited.
        var exit: ExitInfo?
    }

    private struct Entry {
        let offset: UInt64
        let chunk: OutputChunk
    }

    private struct State {
        var entries = CircularBuffer<Entry>()
        var start: UInt64 = 0
        var end: UInt64 = 0
        var held = 0
        var exit: ExitInfo?
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var cancelled: Set<Int> = []
        var nextWaiter = 0
    }

    let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int) {
        self.capacity = max(capacity, 1)
    }

    /// Offset of the oldest byte still held.
    var startOffset: UInt64 { state.withLock { $0.start } }
    /// Offset just past the newest byte.
    var endOffset: UInt64 { state.withLock { $0.end } }
    /// The exit, once `finish` was called.
    var exit: ExitInfo? { state.withLock { $0.exit } }

    /// Adds output and wakes readers.
    func append(_ chunk: OutputChunk) {
        let count = chunk.bytes.readableBytes
        guard count > 0 else { return }
        let woken: [CheckedContinuation<Void, Never>] = state.withLock { s in
            guard s.exit == nil else { return [] }
            s.entries.append(Entry(offset: s.end, chunk: chunk))
            s.end += UInt64(count)
            s.held += count
            while s.held > capacity, s.entries.count > 1 {
                let old = s.entries.removeFirst()
                s.held -= old.chunk.bytes.readableBytes
                s.start = old.offset + UInt64(old.chunk.bytes.readableBytes)
            }
            return takeWaiters(&s)
        }
        woken.forEach { $0.resume() }
    }

    /// Marks the output complete; readers get `exit` after the last chunk.
    func finish(_ exit: ExitInfo) {
        let woken: [CheckedContinuation<Void, Never>] = state.withLock { s in
            guard s.exit == nil else { return [] }
            s.exit = exit
            return takeWaiters(&s)
        }
        woken.forEach { $0.resume() }
    }

    /// Everything after `cursor` that is held now, without waiting.
    func snapshot(after cursor: UInt64) -> Batch {
        state.withLock { s in Self.collect(s, after: cursor) }
    }

    /// Waits until there is output after `cursor` or the log is finished, then returns it. Returns an empty
    /// batch when the task is cancelled.
    func read(after cursor: UInt64) async -> Batch {
        let id = state.withLock { s -> Int in
            s.nextWaiter += 1
            return s.nextWaiter
        }
        while true {
            let batch = snapshot(after: cursor)
            if !batch.chunks.isEmpty || batch.exit != nil || batch.dropped > 0 || Task.isCancelled {
                return batch
            }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let resumeNow = state.withLock { s -> Bool in
                        if s.cancelled.remove(id) != nil { return true }
                        if s.end > cursor || s.exit != nil { return true }
                        s.waiters[id] = continuation
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            } onCancel: {
                let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
                    if let w = s.waiters.removeValue(forKey: id) { return w }
                    s.cancelled.insert(id)
                    return nil
                }
                waiter?.resume()
            }
            state.withLock { _ = $0.cancelled.remove(id) }
        }
    }

    private func takeWaiters(_ s: inout State) -> [CheckedContinuation<Void, Never>] {
        let all = Array(s.waiters.values)
        s.waiters.removeAll()
        return all
    }

    private static func collect(_ s: State, after cursor: UInt64) -> Batch {
        var dropped = 0
        var from = cursor
        if from < s.start {
            dropped = Int(s.start - from)
            from = s.start
        }
        var chunks: [OutputChunk] = []
        for entry in s.entries where entry.offset >= from {
            chunks.append(entry.chunk)
        }
        let next = max(from, s.end)
        return Batch(chunks: chunks, dropped: dropped, next: next, exit: s.exit)
    }
}
