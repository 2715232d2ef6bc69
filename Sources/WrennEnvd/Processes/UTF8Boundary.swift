import NIOCore

/// Splits a byte stream at UTF-8 character boundaries so that a multi-byte character cut between two reads
/// is not sent as two invalid halves. Bytes that cannot be valid UTF-8 anyway pass through.
struct UTF8Boundary {
    private var carry = ByteBuffer()

    /// Returns the bytes that can be emitted now; keeps an incomplete trailing character for later.
    mutating func feed(_ chunk: ByteBuffer) -> ByteBuffer {
        var combined: ByteBuffer
        if carry.readableBytes > 0 {
            combined = carry
            var chunk = chunk
            combined.writeBuffer(&chunk)
            carry.clear()
        } else {
            combined = chunk
        }
        let keep = Self.incompleteTailLength(combined.readableBytesView)
        if keep > 0, let tail = combined.getSlice(at: combined.writerIndex - keep, length: keep) {
            carry = tail
            combined.moveWriterIndex(to: combined.writerIndex - keep)
        }
        return combined
    }

    /// Whatever is left at end of stream.
    mutating func flush() -> ByteBuffer {
        defer { carry.clear() }
        return carry
    }

    /// Length of a trailing, not yet complete multi-byte sequence (0 when the data ends on a boundary).
    static func incompleteTailLength(_ bytes: ByteBufferView) -> Int {
        let count = bytes.count
        guard count > 0 else { return 0 }
        var back = 0
        var index = bytes.endIndex
        while back < 4 && index > bytes.startIndex {
            index = bytes.index(before: index)
            back += 1
            let byte = bytes[index]
            if byte & 0b1100_0000 == 0b1000_0000 { continue }  // continuation byte: keep looking for the lead
            let needed: Int
            if byte & 0b1000_0000 == 0 { needed = 1 }
            else if byte & 0b1110_0000 == 0b1100_0000 { needed = 2 }
            else if byte & 0b1111_0000 == 0b1110_0000 { needed = 3 }
            else if byte & 0b1111_1000 == 0b1111_0000 { needed = 4 }
            else { return 0 }
            return back < needed ? back : 0
        }
        return 0
    }
}
