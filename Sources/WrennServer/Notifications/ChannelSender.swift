import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Why a delivery did not succeed.
enum ChannelDeliveryError: Error, CustomStringConvertible {
    /// The receiver answered, but not with 2xx (redirects are not followed and count as failures).
    case status(Int, String)
    /// The receiver could not be reached or did not answer in time.
    case unreachable(String)
    /// The stored config cannot make a request (missing field, undecryptable value).
    case misconfigured(String)

    var description: String {
        switch self {
        case .status(let code, let body): body.isEmpty ? "receiver answered HTTP \(code)" : "receiver answered HTTP \(code): \(body)"
        case .unreachable(let why): "receiver unreachable: \(why)"
        case .misconfigured(let why): "channel misconfigured: \(why)"
        }
    }
}

/// Sends provider requests: public receivers only unless allowed (`ReceiverAddress`), no redirects followed, a
/// deadline per request, 2xx = delivered.
struct ChannelSender: Sendable {
    /// One process-wide client (like `HTTPClient.shared`, never shut down) configured not to follow redirects.
    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.timeout = .init(connect: .seconds(5))
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    let timeout: Duration
    /// Whether receivers may be non-public addresses (`ReceiverAddress`).
    var allowPrivate = false
    var http: HTTPClient { Self.client }

    func send(_ request: ProviderRequest) async throws {
        if !allowPrivate {
            guard let host = URL(string: request.url)?.host, !host.isEmpty else { throw ChannelDeliveryError.misconfigured("no host in \(request.url)") }
            try await ReceiverAddress.check(host: host)
        }
        var outgoing = HTTPClientRequest(url: request.url)
        outgoing.method = request.method
        for (name, value) in request.headers { outgoing.headers.add(name: name, value: value) }
        outgoing.body = .bytes(ByteBuffer(bytes: request.body))
        let response: HTTPClientResponse
        let deadline = TimeAmount(timeout)
        do {
            response = try await http.execute(outgoing, timeout: deadline)
        } catch {
            throw ChannelDeliveryError.unreachable("\(error)")
        }
        let body = (try? await response.body.collect(upTo: 4096)).map { String(buffer: $0) } ?? ""
        guard (200..<300).contains(response.status.code) else {
            throw ChannelDeliveryError.status(Int(response.status.code), String(body.prefix(200)))
        }
    }
}
