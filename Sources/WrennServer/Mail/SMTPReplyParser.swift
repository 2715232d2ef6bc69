import NIOCore

/// One complete (possibly multi-line) SMTP reply, e.g. the EHLO extension list.
struct SMTPReply: Sendable, Equatable {
    /// Three-digit reply code (2xx success, 3xx intermediate, 4xx transient, 5xx permanent).
    var code: Int
    /// Text of each line, without the code and separator (`250-PIPELINING` → `PIPELINING`).
    var lines: [String]

    init(code: Int, lines: [String]) {
        self.code = code
        self.lines = lines
    }

    /// All lines joined with a space, as used in error messages.
    var text: String { lines.joined(separator: " ") }
}

/// Incremental parser for SMTP replies (RFC 5321 §4.2): `ddd-text` lines continue a reply, a
/// `ddd text` (or bare `ddd`) line ends it. Lines end with CRLF; a bare LF is tolerated.
struct SMTPReplyParser {
    /// Longest accepted reply line (RFC 5321 says 512; real servers exceed it in EHLO text).
    static let maxLineLength = 4096
    /// Most lines accepted in one reply.
    static let maxLines = 512

    private var buffer = ByteBuffer()
    private var pendingCode: Int?
    private var pendingLines: [String] = []

    /// Whether bytes have been received that do not yet form a complete reply.
    var hasBufferedInput: Bool { buffer.readableBytes > 0 || pendingCode != nil }

    mutating func append(_ bytes: inout ByteBuffer) {
        buffer.writeBuffer(&bytes)
    }

    mutating func append(bytes: some Sequence<UInt8>) {
        buffer.writeBytes(bytes)
    }

    /// The next complete reply, or `nil` when more bytes are needed.
    mutating func next() throws(SMTPError) -> SMTPReply? {
        while true {
            guard let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
                if buffer.readableBytes > Self.maxLineLength {
                    throw .malformedReply("reply line longer than \(Self.maxLineLength) bytes")
                }
                return nil
            }
            let lineLength = newline - buffer.readerIndex
            if lineLength > Self.maxLineLength {
                throw .malformedReply("reply line longer than \(Self.maxLineLength) bytes")
            }
            guard var bytes = buffer.readBytes(length: lineLength) else { return nil }
            buffer.moveReaderIndex(forwardBy: 1)  // the LF
            if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
            if buffer.readableBytes == 0 { buffer.clear() } else { buffer.discardReadBytes() }

            let (code, isLast, text) = try Self.parseLine(bytes)
            if let pendingCode, pendingCode != code {
                throw .malformedReply("reply code changed from \(pendingCode) to \(code) inside a multi-line reply")
            }
            pendingCode = code
            pendingLines.append(text)
            if pendingLines.count > Self.maxLines {
                throw .malformedReply("reply has more than \(Self.maxLines) lines")
            }
            if isLast {
                let reply = SMTPReply(code: code, lines: pendingLines)
                pendingCode = nil
                pendingLines = []
                return reply
            }
        }
    }

    private static func parseLine(_ bytes: [UInt8]) throws(SMTPError) -> (code: Int, isLast: Bool, text: String) {
        guard bytes.count >= 3,
            (UInt8(ascii: "2")...UInt8(ascii: "5")).contains(bytes[0]),
            (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[1]),
            (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[2])
        else {
            throw .malformedReply("line does not start with a reply code: \(Self.printable(bytes))")
        }
        let code = Int(bytes[0] - 48) * 100 + Int(bytes[1] - 48) * 10 + Int(bytes[2] - 48)
        if bytes.count == 3 {
            return (code, true, "")
        }
        let separator = bytes[3]
        guard separator == UInt8(ascii: " ") || separator == UInt8(ascii: "-") else {
            throw .malformedReply("unexpected separator after reply code: \(Self.printable(bytes))")
        }
        let text = Self.printable(bytes[4...])
        return (code, separator == UInt8(ascii: " "), text)
    }

    /// Decodes a reply line as UTF-8 and drops control characters so server text can be logged safely.
    private static func printable<C: Collection<UInt8>>(_ bytes: C) -> String {
        let decoded = String(decoding: bytes.prefix(maxLineLength), as: UTF8.self)
        return String(String.UnicodeScalarView(decoded.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }))
    }
}

/// Turns the byte stream from the server into `SMTPReply` values.
///
/// Counts the replies it has passed on, so the client can check at STARTTLS time that nothing was
/// pipelined behind the `220` (RFC 3207 §5 / STARTTLS command injection).
final class SMTPReplyDecoderHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = SMTPReply

    private var parser = SMTPReplyParser()
    private var failed = false
    private(set) var repliesEmitted = 0

    /// Whether bytes are buffered that are not part of an emitted reply.
    var hasBufferedInput: Bool { parser.hasBufferedInput }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        var bytes = Self.unwrapInboundIn(data)
        parser.append(&bytes)
        do {
            while let reply = try parser.next() {
                repliesEmitted += 1
                context.fireChannelRead(Self.wrapInboundOut(reply))
            }
        } catch {
            failed = true
            context.fireErrorCaught(error)
            context.close(promise: nil)
        }
    }
}

@available(*, unavailable)
extension SMTPReplyDecoderHandler: Sendable {}
