import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle

/// A stand-in for the services notification channels talk to (Discord, Slack, Teams, Google Chat, Telegram Bot API,
/// Matrix homeserver, a webhook receiver): a real HTTP server on loopback that records every request and answers
/// with scripted statuses (200 when nothing is scripted). Paths under `/hang` hold the request until released.
final class ChannelReceiver: Sendable {
    struct Received: Sendable {
        var method: String
        var path: String
        var headers: HTTPFields
        var body: Data
        var at: ContinuousClock.Instant
        var json: [String: Any] { ((try? JSONSerialization.jsonObject(with: body)) as? [String: Any]) ?? [:] }
        func header(_ name: String) -> String? { HTTPField.Name(name).flatMap { headers[$0] } }
    }

    private struct State {
        var received: [Received] = []
        var scripted: [String: [Int]] = [:]
        var released = false
    }
    private let state = NIOLockedValueBox(State())

    /// The next responses for `path`, in order (then 200 again).
    func script(_ path: String, statuses: [Int]) { state.withLockedValue { $0.scripted[path, default: []] += statuses } }

    /// Drops what is still scripted for `path`.
    func clearScript(_ path: String) { state.withLockedValue { $0.scripted[path] = nil } }

    func requests(path prefix: String = "/") -> [Received] { state.withLockedValue { $0.received.filter { $0.path.hasPrefix(prefix) } } }

    /// Lets held `/hang` requests finish.
    func release() { state.withLockedValue { $0.released = true } }

    /// Waits up to `timeout` until `count` requests under `prefix` arrived; returns them.
    func waitFor(_ count: Int, path prefix: String = "/", timeout: Duration = .seconds(10)) async throws -> [Received] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let got = requests(path: prefix)
            if got.count >= count { return got }
            try await Task.sleep(for: .milliseconds(20))
        }
        let got = requests(path: prefix)
        throw TestBackendError("expected \(count) request(s) under \(prefix), got \(got.count): \(got.map { "\($0.method) \($0.path)" })")
    }

    /// Runs the receiver for the duration of `body`, passing its base URL.
    func run<T: Sendable>(_ body: @Sendable (String) async throws -> T) async throws -> T {
        let router = Router()
        router.on("**", method: .post) { request, _ in try await self.record(request) }
        router.on("**", method: .put) { request, _ in try await self.record(request) }
        return try await withLoopbackServer(router, label: "channel receiver", logLevel: .critical, beforeShutdown: { self.release() }, body)
    }

    private func record(_ request: Request) async throws -> Response {
        let bytes = try await request.body.collect(upTo: 1 << 20)
        let path = request.uri.path
        let status = state.withLockedValue { s -> Int in
            s.received.append(Received(method: request.method.rawValue, path: path, headers: request.headers, body: Data(buffer: bytes), at: .now))
            guard var queue = s.scripted[path], !queue.isEmpty else { return 200 }
            let next = queue.removeFirst()
            s.scripted[path] = queue
            return next
        }
        if path.hasPrefix("/hang") {
            for _ in 0..<400 where !state.withLockedValue({ $0.released }) { try? await Task.sleep(for: .milliseconds(50)) }
        }
        let body = path.contains("/sendMessage") ? #"{"ok":true,"result":{"message_id":1}}"# : (path.contains("/_matrix/") ? #"{"event_id":"$e1"}"# : "ok")
        return Response(status: .init(code: status), headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}
