import AsyncHTTPClient
import Foundation
import HTTPTypes
import HummingbirdWSClient
import Logging
import NIOCore
import NIOHTTP1
import WrennWire

/// A small HTTP + WebSocket client for envd, as the host agent would use it.
struct EnvdClient: Sendable {
    let envd: EnvdProcess
    var token: String

    init(_ envd: EnvdProcess, token: String? = nil) {
        self.envd = envd
        self.token = token ?? envd.token
    }

    struct Reply: Sendable {
        let status: Int
        let body: ByteBuffer
        var text: String { String(buffer: body) }
        func decode<T: Decodable>(_ type: T.Type) throws -> T {
            try JSONDecoder().decode(T.self, from: Data(body.readableBytesView))
        }
    }

    func request(_ method: HTTPMethod, _ path: String, body: ByteBuffer? = nil, authorized: Bool = true, timeout: Int64 = 60) async throws -> Reply {
        var request = HTTPClientRequest(url: envd.baseURL + path)
        request.method = method
        if authorized { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(body)
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(timeout))
        let collected = try await response.body.collect(upTo: 256 << 20)
        return Reply(status: Int(response.status.code), body: collected)
    }

    func post<T: Encodable>(_ path: String, json: T, timeout: Int64 = 60) async throws -> Reply {
        let data = try JSONEncoder().encode(json)
        return try await request(.POST, path, body: ByteBuffer(bytes: data), timeout: timeout)
    }

    func get(_ path: String) async throws -> Reply {
        try await request(.GET, path)
    }

    /// Opens a WebSocket and runs `body` with a frame reader and the writer; returns when `body` does.
    func webSocket(
        _ path: String, token: String? = nil,
        _ body: @escaping @Sendable (inout FrameReader, WebSocketOutboundWriter) async throws -> Void
    ) async throws {
        var headers = HTTPFields()
        headers[.authorization] = "Bearer \(token ?? self.token)"
        var logger = Logger(label: "test.ws")
        logger.logLevel = .warning
        try await WebSocketClient.connect(
            url: envd.wsURL + path,
            configuration: .init(maxFrameSize: 1 << 20, additionalHeaders: headers, closeTimeout: .seconds(2)),
            logger: logger
        ) { inbound, outbound, _ in
            var reader = FrameReader(inbound.messages(maxSize: 1 << 24).makeAsyncIterator())
            try await body(&reader, outbound)
        }
    }
}

/// Reads JSON frames from a WebSocket.
struct FrameReader {
    private var iterator: WebSocketInboundMessageStream.AsyncIterator

    init(_ iterator: WebSocketInboundMessageStream.AsyncIterator) {
        self.iterator = iterator
    }

    /// The next frame decoded as `T`, or nil when the socket closed.
    mutating func next<T: Decodable>(_ type: T.Type) async throws -> T? {
        guard let message = try await iterator.next() else { return nil }
        switch message {
        case .text(let text): return try JSONDecoder().decode(T.self, from: Data(text.utf8))
        case .binary(let buffer): return try JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView))
        }
    }
}

extension WebSocketOutboundWriter {
    func send<T: Encodable>(_ frame: T) async throws {
        let data = try JSONEncoder().encode(frame)
        try await write(.text(String(decoding: data, as: UTF8.self)))
    }
}

extension ByteBuffer {
    static func json<T: Encodable>(_ value: T) throws -> ByteBuffer {
        ByteBuffer(bytes: try JSONEncoder().encode(value))
    }
}
