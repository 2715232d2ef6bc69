import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTesting
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOPosix
import Testing
import WrennHTTP
@testable import WrennServer

/// The control plane's HTTP/1 server upgrades to WebSocket on any request of a keep-alive connection (the official
/// SDK's httpx_ws reuses pooled connections), driven by a raw TCP client that speaks HTTP/1 and WebSocket frames.
@Suite("Keep-alive WebSocket upgrade")
struct KeepAliveWebSocketTests {
    @Test("an upgrade after ordinary requests on the same connection switches to WebSocket")
    func upgradeAfterRequests() async throws {
        try await Self.withServer(.http1KeepAliveWebSocket(webSocketRouter: Self.webSocketRouter())) { port in
            try await RawConnection.withConnection(port: port) { conn in
                let first = try await conn.request("GET /ping HTTP/1.1\r\nHost: localhost\r\n\r\n")
                #expect(first.hasPrefix("HTTP/1.1 200"))
                #expect(first.hasSuffix("pong"))
                let posted = try await conn.request("POST /count HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nabcde")
                #expect(posted.hasSuffix("5"))

                let handshake = try await conn.request(Self.upgradeRequest(path: "/ws/echo"))
                #expect(handshake.hasPrefix("HTTP/1.1 101"), "got \(handshake)")
                try await conn.sendText("hello")
                #expect(try await conn.readText() == "hello")
                try await conn.sendText("again")
                #expect(try await conn.readText() == "again")
            }
        }
    }

    @Test("the first frame sent in the same packet as the upgrade request is not lost")
    func frameWithUpgradeRequest() async throws {
        try await Self.withServer(.http1KeepAliveWebSocket(webSocketRouter: Self.webSocketRouter())) { port in
            try await RawConnection.withConnection(port: port) { conn in
                let first = try await conn.request("GET /ping HTTP/1.1\r\nHost: localhost\r\n\r\n")
                #expect(first.hasSuffix("pong"))
                var bytes = ByteBuffer(string: Self.upgradeRequest(path: "/ws/echo"))
                bytes.writeImmutableBuffer(RawConnection.maskedTextFrame("early"))
                try await conn.write(bytes)
                let handshake = try await conn.readHead()
                #expect(handshake.hasPrefix("HTTP/1.1 101"), "got \(handshake)")
                #expect(try await conn.readText() == "early")
            }
        }
    }

    @Test("an upgrade on the first request still works")
    func upgradeFirst() async throws {
        try await Self.withServer(.http1KeepAliveWebSocket(webSocketRouter: Self.webSocketRouter())) { port in
            try await RawConnection.withConnection(port: port) { conn in
                let handshake = try await conn.request(Self.upgradeRequest(path: "/ws/echo"))
                #expect(handshake.hasPrefix("HTTP/1.1 101"))
                try await conn.sendText("first")
                #expect(try await conn.readText() == "first")
            }
        }
    }

    @Test("a refused upgrade after a request is answered, not redirected")
    func refusedUpgradeAfterRequest() async throws {
        try await Self.withServer(.http1KeepAliveWebSocket(webSocketRouter: Self.webSocketRouter())) { port in
            try await RawConnection.withConnection(port: port) { conn in
                _ = try await conn.request("GET /ping HTTP/1.1\r\nHost: localhost\r\n\r\n")
                let refused = try await conn.request(Self.upgradeRequest(path: "/ws/nowhere"))
                #expect(refused.hasPrefix("HTTP/1.1 400"), "got \(refused)")
            }
        }
    }

    @Test("a refused upgrade is answered with the router's status and error envelope, first request or later")
    func refusalCarriesTheEnvelope() async throws {
        try await Self.withServer(.http1KeepAliveWebSocket(webSocketRouter: Self.refusingRouter()), context: ChannelAwareContext.self) { port in
            try await RawConnection.withConnection(port: port) { conn in
                let refused = try await conn.request(Self.upgradeRequest(path: "/ws/refuse"))
                #expect(refused.hasPrefix("HTTP/1.1 409"), "got \(refused)")
                #expect(refused.contains("\"code\":\"invalid_state\""))
                #expect(refused.lowercased().contains("x-content-type-options: nosniff"))
            }
            try await RawConnection.withConnection(port: port) { conn in
                _ = try await conn.request("GET /ping HTTP/1.1\r\nHost: localhost\r\n\r\n")
                let unknown = try await conn.request(Self.upgradeRequest(path: "/ws/nowhere"))
                #expect(unknown.hasPrefix("HTTP/1.1 404"), "got \(unknown)")
                #expect(unknown.contains("\"code\":\"not_found\""))
            }
            try await RawConnection.withConnection(port: port) { conn in
                let handshake = try await conn.request(Self.upgradeRequest(path: "/ws/echo"))
                #expect(handshake.hasPrefix("HTTP/1.1 101"))
                try await conn.sendText("still works")
                #expect(try await conn.readText() == "still works")
            }
        }
    }

    @Test("a connection that dribbles its first request head, or idles between requests, is closed", .timeLimit(.minutes(1)))
    func slowHeadsAreCut() async throws {
        try await Self.withServer(.http1KeepAliveWebSocket(webSocketRouter: Self.webSocketRouter(),
                                                           configuration: .init(http1: .init(idleTimeout: .seconds(1))),
                                                           firstRequestTimeout: .seconds(1))) { port in
            try await RawConnection.withConnection(port: port) { conn in
                try await conn.write(ByteBuffer(string: "GET /ping HTTP/1.1\r\nHost: local"))
                await #expect(throws: RawConnection.Closed.self) { _ = try await conn.readHead() }
            }
            try await RawConnection.withConnection(port: port) { conn in
                let answer = try await conn.request("GET /ping HTTP/1.1\r\nHost: localhost\r\n\r\n")
                #expect(answer.hasSuffix("pong"))
                await #expect(throws: RawConnection.Closed.self) { _ = try await conn.readHead() }
            }
        }
    }

    /// The control: Hummingbird's own server answers the same keep-alive upgrade with a redirect, which the SDK
    /// does not follow. This is what the first test catches on the old server.
    @Test("Hummingbird's upgrade server redirects a keep-alive upgrade (what the SDK tripped on)")
    func hummingbirdRedirects() async throws {
        try await Self.withServer(.http1WebSocketUpgrade(webSocketRouter: Self.webSocketRouter())) { port in
            try await RawConnection.withConnection(port: port) { conn in
                _ = try await conn.request("GET /ping HTTP/1.1\r\nHost: localhost\r\n\r\n")
                let handshake = try await conn.request(Self.upgradeRequest(path: "/ws/echo"))
                #expect(handshake.hasPrefix("HTTP/1.1 307"))
            }
        }
    }

    // MARK: support

    static func upgradeRequest(path: String) -> String {
        "GET \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    }

    static func webSocketRouter() -> Router<BasicWebSocketRequestContext> {
        let router = Router(context: BasicWebSocketRequestContext.self)
        router.ws("/ws/echo") { inbound, outbound, _ in
            for try await message in inbound.messages(maxSize: 1 << 16) {
                if case .text(let text) = message { try await outbound.write(.text(text)) }
            }
        }
        return router
    }

    /// A context that knows its connection, so refusals carry the router's answer.
    struct ChannelAwareContext: RequestContext, WebSocketRequestContext, ConnectionContext {
        var coreContext: CoreRequestContextStorage
        let webSocket: WebSocketHandlerReference<Self>
        let channel: any Channel
        init(source: ApplicationRequestContextSource) {
            coreContext = .init(source: source)
            webSocket = .init()
            channel = source.channel
        }
    }

    static func refusingRouter() -> Router<ChannelAwareContext> {
        let router = Router(context: ChannelAwareContext.self)
        router.add(middleware: ErrorEnvelopeMiddleware())
        router.ws("/ws/refuse", shouldUpgrade: { _, _ in throw APIError.invalidState("not now") }) { _, _, _ in }
        router.ws("/ws/echo") { inbound, outbound, _ in
            for try await message in inbound.messages(maxSize: 1 << 16) {
                if case .text(let text) = message { try await outbound.write(.text(text)) }
            }
        }
        return router
    }

    static func withServer(_ server: HTTPServerBuilder, _ body: @Sendable (Int) async throws -> Void) async throws {
        try await withServer(server, context: BasicWebSocketRequestContext.self, body)
    }

    static func withServer<Context: RequestContext>(_ server: HTTPServerBuilder, context: Context.Type,
                                                    _ body: @Sendable (Int) async throws -> Void) async throws
    where Context.Source == ApplicationRequestContextSource {
        let router = Router(context: Context.self)
        router.get("/ping") { _, _ in "pong" }
        router.post("/count") { request, _ -> String in
            let bytes = try await request.body.collect(upTo: 1 << 20)
            return "\(bytes.readableBytes)"
        }
        var logger = Logger(label: "wrenn.test.keepalive")
        logger.logLevel = .warning
        let app = Application(router: router, server: server, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              logger: logger)
        try await app.test(.live) { client in
            try await body(try #require(client.port))
        }
    }
}

/// One TCP connection to the server, read and written as raw bytes.
struct RawConnection {
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private let buffer: Buffer

    final class Buffer: @unchecked Sendable {
        var bytes = ByteBuffer()
        var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
        init(_ iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator) { self.iterator = iterator }
    }

    struct Closed: Error {}

    static func withConnection(port: Int, _ body: (RawConnection) async throws -> Void) async throws {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        try await channel.executeThenClose { inbound, outbound in
            let iterator = inbound.makeAsyncIterator()
            try await body(RawConnection(outbound: outbound, buffer: Buffer(iterator)))
        }
    }

    func write(_ bytes: ByteBuffer) async throws { try await outbound.write(bytes) }

    /// Sends `text` (a whole HTTP request) and returns the response head and its `Content-Length` body as text.
    func request(_ text: String) async throws -> String {
        try await write(ByteBuffer(string: text))
        let head = try await readHead()
        let length = head.split(separator: "\r\n").compactMap { line -> Int? in
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "content-length" else { return nil }
            return Int(parts[1].trimmingCharacters(in: .whitespaces))
        }.first ?? 0
        let body = try await readBytes(length)
        return head + String(buffer: body)
    }

    /// Reads up to and including the blank line ending a response head.
    func readHead() async throws -> String {
        while true {
            if let range = buffer.bytes.readableBytesView.firstRange(of: Array("\r\n\r\n".utf8)) {
                let count = range.upperBound - buffer.bytes.readerIndex
                return buffer.bytes.readString(length: count) ?? ""
            }
            try await fill()
        }
    }

    func readBytes(_ count: Int) async throws -> ByteBuffer {
        while buffer.bytes.readableBytes < count { try await fill() }
        return buffer.bytes.readSlice(length: count) ?? ByteBuffer()
    }

    private func fill() async throws {
        guard var more = try await buffer.iterator.next() else { throw Closed() }
        buffer.bytes.writeBuffer(&more)
    }

    static func maskedTextFrame(_ text: String) -> ByteBuffer {
        let payload = Array(text.utf8)
        precondition(payload.count < 126)
        let mask: [UInt8] = [1, 2, 3, 4]
        var frame = ByteBuffer()
        frame.writeBytes([0x81, 0x80 | UInt8(payload.count)] + mask)
        frame.writeBytes(payload.enumerated().map { $0.element ^ mask[$0.offset % 4] })
        return frame
    }

    func sendText(_ text: String) async throws { try await write(Self.maskedTextFrame(text)) }

    /// Reads one unmasked server frame (skipping pings) and returns its text.
    func readText() async throws -> String {
        while true {
            let header = try await readBytes(2)
            let opcode = header.getInteger(at: header.readerIndex, as: UInt8.self)! & 0x0F
            var length = Int(header.getInteger(at: header.readerIndex + 1, as: UInt8.self)! & 0x7F)
            if length == 126 {
                let ext = try await readBytes(2)
                length = Int(ext.getInteger(at: ext.readerIndex, as: UInt16.self)!)
            }
            let payload = try await readBytes(length)
            if opcode == 0x1 { return String(buffer: payload) }
        }
    }
}
