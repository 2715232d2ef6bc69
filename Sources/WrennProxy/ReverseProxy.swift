import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import Synchronization
import WrennHTTP

/// The one reverse proxy of every HTTP hop that passes a request through (agent → envd, agent → a guest port, control
/// plane → agent for the port proxy):
/// - **headers by list**: only what the route's ``HeaderPolicy`` allows goes upstream, then the route's own headers
///   (a bearer token, `X-Forwarded-Host`); only what the response policy allows comes back, then `rewrite` runs;
/// - **one deadline rule**: the response head must arrive within `deadline`; a body then streams as long as it lasts
///   (a process stream, a large download); the connection itself has the client's connect timeout;
/// - **bodies stream both ways**: the request body is handed to the client as it arrives (read once: a retry cannot
///   replay it), the answer is written chunk by chunk; nothing is collected.
public struct ReverseProxy: Sendable {
    public let client: HTTPClient
    public let deadline: Duration

    public init(client: HTTPClient, deadline: Duration) {
        self.client = client
        self.deadline = deadline
    }

    /// One hop's target and rules.
    public struct Route: Sendable {
        public var url: String
        public var requestHeaders: HeaderPolicy
        public var responseHeaders: HeaderPolicy
        /// Added after filtering (they win over anything the caller sent).
        public var extraHeaders: HTTPFields
        /// Last say over the answer's headers (the port proxy's `Set-Cookie` guard).
        public var rewrite: (@Sendable (inout HTTPFields) -> Void)?

        public init(url: String, requestHeaders: HeaderPolicy, responseHeaders: HeaderPolicy, extraHeaders: HTTPFields = [:],
                    rewrite: (@Sendable (inout HTTPFields) -> Void)? = nil) {
            self.url = url
            self.requestHeaders = requestHeaders
            self.responseHeaders = responseHeaders
            self.extraHeaders = extraHeaders
            self.rewrite = rewrite
        }
    }

    /// Forwards `request` and streams the answer back. `observer` hears every chunk either way and the end of the
    /// exchange (the agent's activity lease). An upstream that cannot be reached or misses the deadline is thrown as
    /// `failure(error)`.
    public func forward(_ request: Request, _ route: Route, observer: (any ProxyObserver)? = nil, logger: Logger,
                        failure: (any Error) -> any Error) async throws -> Response {
        var outbound = HTTPClientRequest(url: route.url)
        outbound.method = HTTPMethod(rawValue: request.method.rawValue)
        for field in route.requestHeaders.filter(request.headers) { outbound.headers.add(name: field.name.rawName, value: field.value) }
        for field in route.extraHeaders { outbound.headers.replaceOrAdd(name: field.name.rawName, value: field.value) }
        if let length = request.headers[.contentLength].flatMap({ Int64($0) }), length >= 0 {
            if length > 0 { outbound.body = .stream(ProxiedBody(body: request.body, observer: observer), length: .known(length)) }
        } else if request.headers[.transferEncoding] != nil {
            outbound.body = .stream(ProxiedBody(body: request.body, observer: observer), length: .unknown)
        }

        let response: HTTPClientResponse
        do {
            response = try await client.execute(outbound, deadline: .now() + TimeAmount(deadline), logger: logger)
        } catch {
            observer?.finished()
            throw failure(error)
        }
        var headers = route.responseHeaders.filter(HTTPFields(response.headers))
        route.rewrite?(&headers)
        let status = HTTPResponse.Status(code: Int(response.status.code), reasonPhrase: response.status.reasonPhrase)
        let length = response.headers.first(name: "content-length").flatMap { Int($0) }.flatMap { $0 >= 0 ? $0 : nil }
        if request.method == .head {
            observer?.finished()
            if let length { headers[.contentLength] = "\(length)" }
            return Response(status: status, headers: headers, body: ResponseBody())
        }
        let body = response.body
        return Response(status: status, headers: headers, body: ResponseBody(contentLength: length) { writer in
            defer { observer?.finished() }
            for try await chunk in body {
                observer?.traffic()
                try await writer.write(chunk)
            }
            try await writer.finish(nil)
        })
    }
}

/// Hears a proxied exchange: each chunk either way, and its end (once).
public protocol ProxyObserver: Sendable {
    func traffic()
    func finished()
}

/// A request body on its way upstream, read once: an HTTP client that retries a request on a fresh connection gets an
/// error instead of tripping the underlying body's single-iterator precondition (which would take the process down).
struct ProxiedBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let body: RequestBody
    let observer: (any ProxyObserver)?
    private let taken = Taken()

    init(body: RequestBody, observer: (any ProxyObserver)?) {
        self.body = body
        self.observer = observer
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: RequestBody.AsyncIterator?
        let observer: (any ProxyObserver)?

        mutating func next() async throws -> ByteBuffer? {
            guard base != nil else { throw APIError.badGateway("the request body was already forwarded and cannot be sent again") }
            guard let chunk = try await base?.next() else { return nil }
            observer?.traffic()
            return chunk
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: taken.take() ? body.makeAsyncIterator() : nil, observer: observer)
    }

    final class Taken: Sendable {
        private let flag = Mutex(false)
        /// True the first time only.
        func take() -> Bool { flag.withLock { taken in defer { taken = true }; return !taken } }
    }
}

extension HTTPFields {
    /// NIO's header list as `HTTPFields` (names that are not valid tokens are dropped).
    public init(_ headers: HTTPHeaders) {
        self.init()
        for (name, value) in headers {
            if let field = HTTPField.Name(name) { append(HTTPField(name: field, value: value)) }
        }
    }
}
