import Foundation
import Hummingbird
import HummingbirdWebSocket
import NIOCore
import WrennProxy
import WrennWire

/// `/v1/admin/builds…`: template builds (platform admins, session only; anyone else 403, no session 401).
/// Submit takes JSON, or multipart with a `config` part (the same JSON) and an optional `archive` part (tar or
/// tar.gz, ≤ 100 MiB, for COPY) that is spooled to disk, never held in memory. The console is a WebSocket.
struct AdminBuildRoutes {
    let services: ControlPlaneServices
    static let maxConfigBytes = 1 << 20

    func register(on router: Router<WrennRequestContext>) {
        let builds = router.group("v1/admin/builds")
        builds.post { request, context in
            let principal = try context.requireSession(request)
            try services.builds.requireAdmin(principal) // before reading a large body
            let (body, archive) = try await Self.submission(request, context)
            return try JSONResponse.make(try await services.builds.submit(principal, body, archive: archive), status: .accepted)
        }
        builds.get { request, context in
            try JSONResponse.make(try await services.builds.list(try context.requireSession(request)))
        }
        builds.get(":id") { request, context in
            try JSONResponse.make(try await services.builds.get(try context.requireSession(request), id: try context.parameters.require("id")))
        }
        builds.post(":id/cancel") { request, context in
            try await services.builds.cancel(try context.requireSession(request), id: try context.parameters.require("id"))
            return JSONResponse.noContent()
        }
    }

    /// `GET /v1/admin/builds/{id}/stream`: the frames so far, then the live tail; closes after the final
    /// `build-status`. Refusals are answered before the upgrade with the status and error envelope (401, 403 — also
    /// for a session whose `Origin` is not allowed — and 404), as for capsule streams.
    func registerStream(on router: Router<WrennRequestContext>, webSocketRouter: Router<WrennRequestContext>) {
        let path = RouterPath("v1/admin/builds/:id/stream")
        webSocketRouter.get(path) { request, context -> Response in
            let console = try await services.builds.console(try context.requireSession(request), id: try context.parameters.require("id"))
            return try await WebSocketUpgradeMiddleware<WrennRequestContext>(onUpgrade: { inbound, outbound, _ in
                // A finished build's whole console is ready at once: written together with the 101, swift-websocket's
                // client (our own tests and hops use it) can lose what arrives in the same read as the upgrade answer,
                // and then waits forever for a close it never saw. envd's process attach waits the same 30 ms.
                try? await Task.sleep(for: WebSocketRelay.firstFrameDelay)
                // The console takes no input, but its inbound side must still be read: the server's automatic pings
                // are answered by pongs that are only seen there, and without them it closes the socket after one ping
                // period — a step silent for a minute (a pip install) ended the console. The first side to end ends both.
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for try await _ in inbound.messages(maxSize: 1 << 16) {}
                    }
                    group.addTask {
                        let encoder = WireCoding.makeEncoder()
                        for frame in console.history {
                            try await outbound.write(.text(String(decoding: try encoder.encode(frame), as: UTF8.self)))
                        }
                        if let live = console.live {
                            for await frame in live {
                                try await outbound.write(.text(String(decoding: try encoder.encode(frame), as: UTF8.self)))
                            }
                        }
                    }
                    try await group.next()
                    group.cancelAll()
                }
                try? await outbound.close(.normalClosure, reason: nil)
            }).handle(request, context: context) { _, _ in Response(status: .ok) }
        }
        router.get(path) { request, context -> Response in
            _ = try await services.builds.console(try context.requireSession(request), id: try context.parameters.require("id"))
            throw ServiceError.invalid("this endpoint needs a WebSocket upgrade (Connection: Upgrade, Upgrade: websocket)")
        }
    }

    /// The build request and the uploaded archive (a temporary file), from a JSON or multipart body.
    static func submission(_ request: Request, _ context: WrennRequestContext) async throws -> (CreateBuildRequest, URL?) {
        let contentType = request.headers[.contentType] ?? ""
        guard contentType.lowercased().hasPrefix("multipart/") else {
            return (try await request.decodeJSON(CreateBuildRequest.self, context: context), nil)
        }
        var parser: MultipartStreamParser
        do { parser = try MultipartStreamParser(contentType: contentType) } catch {
            throw ServiceError.invalid("Content-Type must be multipart/form-data with a boundary")
        }
        var current: String?
        var config: [UInt8] = []
        var archive: FileSpool?
        var archiveBytes: Int64 = 0
        do {
            for try await chunk in request.body {
                for event in try parser.feed(chunk) {
                    switch event {
                    case .partStart(let name, _, _):
                        current = name
                        if name == "archive" {
                            guard archive == nil else { throw ServiceError.invalid("only one archive part is allowed") }
                            archive = try FileSpool()
                        }
                    case .body(let bytes):
                        if current == "config" {
                            config.append(contentsOf: bytes.readableBytesView)
                            if config.count > maxConfigBytes { throw ServiceError.invalid("config: too large") }
                        } else if current == "archive" {
                            archiveBytes += Int64(bytes.readableBytes)
                            if archiveBytes > BuildService.archiveLimit {
                                throw ServiceError(.tooLarge, "too_large", "archive exceeds the 100 MiB limit")
                            }
                            try archive?.write(bytes)
                        }
                    case .partEnd:
                        current = nil
                    }
                }
            }
            try parser.finish()
        } catch let error as MultipartStreamParser.ParseError {
            archive?.remove()
            throw ServiceError.invalid("malformed multipart body: \(error)")
        } catch {
            archive?.remove()
            throw error
        }
        guard !config.isEmpty else { archive?.remove(); throw ServiceError.invalid("missing form field: config (the build as JSON)") }
        do {
            let body = try WireCoding.makeDecoder().decode(CreateBuildRequest.self, from: Data(config))
            return (body, archive?.url)
        } catch {
            archive?.remove()
            throw ServiceError.invalid("config: not a valid build request (\(error))")
        }
    }
}
