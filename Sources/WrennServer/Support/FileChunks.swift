import Foundation
import NIOCore
import NIOFoundationCompat

/// A file's bytes as an async sequence of 64 KiB buffers, read as they are consumed (request bodies that must not be
/// held in memory: spooled uploads, build archives). `prefix` and `suffix` frame it (a multipart part's headers
/// and boundary). The file is closed at its end or when the sequence is dropped.
enum FileChunks {
    static let chunkSize = 64 * 1024

    static func stream(_ url: URL, prefix: ByteBuffer? = nil, suffix: ByteBuffer? = nil) throws -> AsyncThrowingStream<ByteBuffer, any Error> {
        let state = State(reader: try FileHandle(forReadingFrom: url), prefix: prefix, suffix: suffix)
        return AsyncThrowingStream(unfolding: { try state.next() })
    }

    /// The reading position. `AsyncThrowingStream(unfolding:)` calls `next` once at a time, never concurrently.
    private final class State: @unchecked Sendable {
        let reader: FileHandle
        var prefix: ByteBuffer?
        var suffix: ByteBuffer?
        var open = true

        init(reader: FileHandle, prefix: ByteBuffer?, suffix: ByteBuffer?) {
            self.reader = reader; self.prefix = prefix; self.suffix = suffix
        }

        func next() throws -> ByteBuffer? {
            if let head = prefix { prefix = nil; return head }
            if open {
                if let data = try reader.read(upToCount: FileChunks.chunkSize), !data.isEmpty { return ByteBuffer(data: data) }
                open = false
                try? reader.close()
            }
            if let tail = suffix { suffix = nil; return tail }
            return nil
        }

        deinit { if open { try? reader.close() } }
    }

    /// The size of the file at `url` in bytes (0 when it cannot be read).
    static func size(_ url: URL) -> Int64 {
        ((try? FileManager.default.attributesOfItem(atPath: url.path)[.size]) as? NSNumber)?.int64Value ?? 0
    }
}
