import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOPosix

/// The agent's calls to envd outside the proxy (health, snapshot prepare/restored, benchmarks): AsyncHTTPClient, so
/// no hand-written parser reads what a hostile guest sends, and every reply is bounded in size (`limit`) and in time
/// (`timeout`, from connecting to the last body byte). Whatever envd answers, the result is a ``Response`` or a
/// ``RuntimeError``: nothing a guest sends can trap the agent or hold it. One connection per call (`Connection:
/// close`): a restored guest's old TCP state is never reused. Only ever pointed at addresses inside namespaces the
/// agent created (or loopback in tests).
public enum GuestHTTP {
    /// A response.
    public struct Response: Sendable {
        /// Status code.
        public var status: Int
        /// Body bytes.
        public var body: Data
    }

    /// The largest reply body taken by default (envd's answers here are a few hundred bytes).
    public static let defaultLimit = 1 << 20

    /// The client of these calls: no redirects, no decompression, a pool that keeps nothing.
    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(3)),
                                                     decompression: .disabled)
        configuration.connectionPool = .init(idleTimeout: .milliseconds(1))
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    /// Sends one request and reads the whole response within `timeout` and `limit` bytes.
    public static func request(host: String, port: Int, method: String, path: String, body: Data? = nil,
                               headers: [String: String] = [:], timeout: Duration = .seconds(5),
                               limit: Int = GuestHTTP.defaultLimit) async throws -> Response {
        let authority = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        var request = HTTPClientRequest(url: "http://\(authority)\(path)")
        request.method = HTTPMethod(rawValue: method)
        request.headers.add(name: "Connection", value: "close")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: body))
        }
        let deadline = NIODeadline.now() + TimeAmount(timeout)
        let outbound = request
        do {
            return try await withThrowingTaskGroup(of: Response?.self) { group in
                group.addTask {
                    let response = try await client.execute(outbound, deadline: deadline)
                    let bytes = try await response.body.collect(upTo: limit)
                    return Response(status: Int(response.status.code), body: Data(buffer: bytes))
                }
                group.addTask {
                    try await Task.sleep(until: .now + timeout)
                    return nil
                }
                defer { group.cancelAll() }
                guard let first = try await group.next(), let response = first else {
                    throw RuntimeError.guestProtocol("envd did not answer \(method) \(path) within \(timeout)")
                }
                return response
            }
        } catch let error as RuntimeError {
            throw error
        } catch is NIOTooManyBytesError {
            throw RuntimeError.guestProtocol("envd's answer to \(method) \(path) is larger than \(limit) bytes")
        } catch {
            throw RuntimeError.guestProtocol("envd \(method) \(path) failed: \(error)")
        }
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
