import NIOCore
import NIOPosix

/// Reads a pipe or PTY master through NIO until EOF (a PTY master's EIO counts as EOF), calling `onChunk`
/// for every read. NIO owns and closes the descriptor. With `input` set, bytes from it are written to the
/// same descriptor (PTY keyboard input).
enum PipeReader {
    static func drain(
        fd: Int32,
        input: AsyncStream<ByteBuffer>? = nil,
        onChunk: @Sendable (ByteBuffer) async -> Void
    ) async {
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            let bootstrap = NIOPipeBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            if input != nil {
                channel = try await bootstrap.takingOwnershipOfDescriptor(inputOutput: fd) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
            } else {
                channel = try await bootstrap.takingOwnershipOfDescriptor(input: fd) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
            }
        } catch {
            close(fd)
            return
        }
        try? await channel.executeThenClose { inbound, outbound in
            try await withThrowingTaskGroup(of: Void.self) { group in
                if let input {
                    group.addTask {
                        for await bytes in input {
                            try await outbound.write(bytes)
                        }
                    }
                }
                do {
                    for try await chunk in inbound {
                        await onChunk(chunk)
                    }
                } catch {
                    // EIO from a PTY master whose slave side closed, or cancellation: end of output.
                }
                group.cancelAll()
            }
        }
    }
}
