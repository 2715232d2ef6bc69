import Foundation
import NIOCore
import NIOPosix

/// A minimal HTTP/1.1 client (one request per connection, `Connection: close`) for talking to envd over the
/// capsule's link. Only ever pointed at addresses inside namespaces the agent created.
public enum GuestHTTP {
    /// A response.
    public struct Response: Sendable {
        /// Status code.
        public var status: Int
        /// Body bytes.
        public var body: Data
    }

    /// Sends one request and reads the whole response.
    public static func request(host: String, port: Int, method: String, path: String, body: Data? = nil,
                               headers: [String: String] = [:], timeout: Duration = .seconds(5)) async throws -> Response {
        let (stream, continuation) = AsyncStream<[UInt8]>.makeStream()
        let seconds = Int64(timeout.components.seconds) + 1
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.milliseconds(min(seconds * 1000, 3000)))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteStreamHandler(continuation: continuation))
                }
            }
            .connect(host: host, port: port).get()
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if let body {
            head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n"
        } else if method != "GET" {
            head += "Content-Length: 0\r\n"
        }
        head += "\r\n"
        var buffer = channel.allocator.buffer(string: head)
        if let body { buffer.writeBytes(body) }
        try await channel.writeAndFlush(buffer)
        let reader = Task { () -> [UInt8] in
            var all: [UInt8] = []
            for await chunk in stream { all += chunk }
            return all
        }
        let timer = Task {
            try await Task.sleep(for: timeout)
            try await channel.close()
        }
        let raw = await reader.value
        timer.cancel()
        try? await channel.close()
        return try parse(raw)
    }

    /// Parses a complete HTTP/1.1 response (Content-Length, chunked or read-to-close bodies).
    public static func parse(_ raw: [UInt8]) throws -> Response {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let range = raw.firstRange(of: separator) else { throw RuntimeError.guestProtocol("incomplete HTTP response") }
        let head = String(decoding: raw[..<range.lowerBound], as: UTF8.self)
        let lines = head.components(separatedBy: "\r\n")
        let statusParts = lines.first?.split(separator: " ") ?? []
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { throw RuntimeError.guestProtocol("bad status line") }
        var bodyBytes = Array(raw[range.upperBound...])
        let chunked = lines.contains { $0.lowercased().hasPrefix("transfer-encoding:") && $0.lowercased().contains("chunked") }
        if chunked {
            var decoded: [UInt8] = []
            var rest = bodyBytes[...]
            while let lineEnd = rest.firstRange(of: [13, 10]) {
                let sizeText = String(decoding: rest[..<lineEnd.lowerBound], as: UTF8.self).split(separator: ";").first ?? ""
                guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16), size > 0 else { break }
                let start = lineEnd.upperBound
                guard rest.endIndex >= start + size else { break }
                decoded += rest[start ..< start + size]
                rest = rest[min(start + size + 2, rest.endIndex)...]
            }
            bodyBytes = decoded
        } else if let lengthLine = lines.first(where: { $0.lowercased().hasPrefix("content-length:") }),
                  let length = Int(lengthLine.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) {
            bodyBytes = Array(bodyBytes.prefix(length))
        }
        return Response(status: status, body: Data(bodyBytes))
    }
}

/// Forwards inbound bytes to an AsyncStream, finishing it when the connection closes (the guest HTTP client and
/// the QMP client both read sockets through it).
final class ByteStreamHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    private let continuation: AsyncStream<[UInt8]>.Continuation

    init(continuation: AsyncStream<[UInt8]>.Continuation) {
        self.continuation = continuation
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = Self.unwrapInboundIn(data)
        if let bytes = buffer.readBytes(length: buffer.readableBytes) { continuation.yield(bytes) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        continuation.finish()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        continuation.finish()
        context.close(promise: nil)
    }
}
