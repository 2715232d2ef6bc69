import NIOCore
import WrennWire

/// Sends a process's output as frames: `start`, then everything the replay log still holds, then live output,
/// then `exit`. Used by the WebSocket attach, the NDJSON attach and the exec stream.
enum ProcessFollower {
    static func follow(
        _ process: ManagedProcess,
        from cursor: UInt64? = nil,
        emit: (ProcessStreamFrame) async throws -> Void
    ) async throws {
        var cursor = cursor ?? process.log.startOffset
        var dropped = 0
        try await emit(ProcessStreamFrame(type: .start, pid: process.pid, tag: process.tag))
        while !Task.isCancelled {
            let batch = await process.log.read(after: cursor)
            dropped += batch.dropped
            for chunk in batch.chunks {
                try await emit(FrameCoding.dataFrame(chunk, dropped: dropped))
                dropped = 0
            }
            cursor = batch.next
            if let exit = batch.exit {
                try await emit(FrameCoding.exitFrame(exit))
                return
            }
        }
    }
}
