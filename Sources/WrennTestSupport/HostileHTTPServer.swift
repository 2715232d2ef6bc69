import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// A stand-in for a hostile guest: a real TCP server on loopback that reads each HTTP/1.1 request head and answers
/// with whatever bytes a test scripts for its path — HTML with script, oversized or broken headers, an empty or huge
/// `Content-Length`, an endless body, a slow drip, `Set-Cookie`s, a connection that never answers. It never parses
/// more than it must: the point is to send what no well-behaved server would.
public final class HostileHTTPServer: Sendable {
    /// What to do with one request.
    public enum Behavior: Sendable {
        /// Write these bytes, then close.
        case raw(String)
        /// Write a head, then body bytes forever (until the client goes away).
        case endless(head: String, chunk: String)
        /// Write a head, then one byte of `body` every `interval`, then close.
        case drip(head: String, body: String, interval: Duration)
        /// Read the request and never answer (the connection stays open until the client closes it).
        case silent
    }

    /// A request as it arrived.
    public struct Seen: Sendable {
        public var method: String
        public var target: String
        /// Header lines as sent, names lowercased.
        public var headers: [(name: String, value: String)]

        public func header(_ name: String) -> String? { headers.first { $0.name == name.lowercased() }?.value }
    }

    public let port: Int
    private let channel: any Channel
    private let seen = Mutex<[Seen]>([])
    private let script: @Sendable (_ method: String, _ target: String) -> Behavior

    /// Starts on `127.0.0.1:<free port>`; `script` chooses each answer.
    public static func start(_ script: @escaping @Sendable (_ method: String, _ target: String) -> Behavior) async throws -> HostileHTTPServer {
        let box = Mutex<HostileHTTPServer?>(nil)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.addHandler(Connection { method, target, headers in
                        guard let server = box.withLock({ $0 }) else { return .silent }
                        server.seen.withLock { $0.append(Seen(method: method, target: target, headers: headers)) }
                        return server.script(method, target)
                    })
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let server = HostileHTTPServer(port: channel.localAddress?.port ?? 0, channel: channel, script: script)
        box.withLock { $0 = server }
        return server
    }

    private init(port: Int, channel: any Channel, script: @escaping @Sendable (String, String) -> Behavior) {
        self.port = port
        self.channel = channel
        self.script = script
    }

    /// Every request so far.
    public var requests: [Seen] { seen.withLock { $0 } }

    public func stop() async {
        try? await channel.close()
    }

    /// A complete response with `Content-Length`.
    public static func response(status: String = "200 OK", headers: [String] = [], body: String) -> String {
        var head = "HTTP/1.1 \(status)\r\n"
        for line in headers { head += line + "\r\n" }
        head += "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n"
        return head + body
    }

    /// Reads request heads (and skips their bodies) and plays the scripted answer.
    final class Connection: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let answer: @Sendable (String, String, [(name: String, value: String)]) -> Behavior
        private var buffer = ByteBuffer()
        private var answered = false

        init(_ answer: @escaping @Sendable (String, String, [(name: String, value: String)]) -> Behavior) { self.answer = answer }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var bytes = unwrapInboundIn(data)
            guard !answered else { return }
            buffer.writeBuffer(&bytes)
            let view = Array(buffer.readableBytesView)
            guard let end = view.firstRange(of: [13, 10, 13, 10]) else {
                if buffer.readableBytes > 1 << 20 { context.close(promise: nil) }
                return
            }
            answered = true
            let lines = String(decoding: view[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
            let parts = (lines.first ?? "").split(separator: " ")
            let headers = lines.dropFirst().compactMap { line -> (name: String, value: String)? in
                guard let colon = line.firstIndex(of: ":") else { return nil }
                return (line[..<colon].lowercased(), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
            }
            let behavior = answer(parts.count > 0 ? String(parts[0]) : "", parts.count > 1 ? String(parts[1]) : "", headers)
            play(behavior, context: context)
        }

        func play(_ behavior: Behavior, context: ChannelHandlerContext) {
            let channel = context.channel
            switch behavior {
            case .silent:
                return
            case .raw(let text):
                channel.writeAndFlush(ByteBuffer(string: text)).whenComplete { _ in channel.close(promise: nil) }
            case .endless(let head, let chunk):
                Task {
                    do {
                        try await channel.writeAndFlush(ByteBuffer(string: head))
                        while channel.isActive { try await channel.writeAndFlush(ByteBuffer(string: chunk)) }
                    } catch {}
                    try? await channel.close()
                }
            case .drip(let head, let body, let interval):
                Task {
                    do {
                        try await channel.writeAndFlush(ByteBuffer(string: head))
                        for byte in body.utf8 {
                            try await Task.sleep(for: interval)
                            try await channel.writeAndFlush(ByteBuffer(bytes: [byte]))
                        }
                    } catch {}
                    try? await channel.close()
                }
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
