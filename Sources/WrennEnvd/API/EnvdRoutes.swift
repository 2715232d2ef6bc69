import Foundation
import Hummingbird
import NIOCore
import WrennHTTP
import WrennWire

/// envd's plain HTTP routes. Every one but `GET /health` needs the bearer token (see `AuthMiddleware`).
struct EnvdRoutes: Sendable {
    let services: EnvdServices

    func register(on router: Router<EnvdRequestContext>) {
        router.get("/health") { _, _ in
            EnvdHealth(status: "ok", version: services.configuration.version)
        }
        router.get("/metrics") { _, _ in
            await services.metrics.sample()
        }

        // Processes
        router.post("/exec") { request, context -> Response in
            let exec = try await request.decode(as: ExecRequest.self, context: context)
            if exec.background == true {
                let process = try services.processes.start(
                    cmd: exec.cmd, args: exec.args ?? [], envs: exec.envs, cwd: exec.cwd, user: exec.user, tag: exec.tag,
                    timeout: nil, kind: .background
                )
                let body = BackgroundExecResponse(
                    sandboxId: services.identity.current.capsuleID, cmd: exec.cmd, pid: process.pid, tag: process.tag
                )
                return try JSONResponse.make(body, status: .accepted)
            }
            return try JSONResponse.make(try await services.processes.runForeground(exec))
        }
        router.get("/processes") { _, _ in
            ProcessListResponse(processes: services.processes.list())
        }
        router.delete("/processes/:selector") { request, context -> Response in
            let selector = try Self.selector(context)
            let name = request.uri.queryParameters.get("signal") ?? "SIGKILL"
            guard let signal = Signals.parse(name) else {
                throw EnvdError.invalid("signal must be SIGKILL or SIGTERM (got \(name))")
            }
            try services.processes.signal(selector: selector, signal: signal)
            return Response(status: .noContent)
        }
        // NDJSON attach for clients without WebSocket (the WebSocket variant shares the path).
        router.get("/processes/:selector/stream") { _, context -> Response in
            let settling = context.settling
            let selector = try Self.selector(context)
            guard let process = services.processes.table.find(selector) else {
                throw EnvdError.notFound("no process '\(selector)'")
            }
            let coding = FrameCoding()
            return Response(
                status: .ok,
                headers: [.contentType: "application/x-ndjson", .cacheControl: "no-store"],
                body: ResponseBody { writer in
                    try await ProcessFollower.follow(process) { frame in
                        try await writer.write(coding.line(frame))
                        try await settling.settle()
                    }
                    try await writer.finish(nil)
                }
            )
        }
        for path in ["/exec/stream", "/pty"] {
            router.get(RouterPath(path)) { _, _ -> Response in
                throw EnvdError(.upgradeRequired, "upgrade_required", "\(path) is a WebSocket endpoint")
            }
        }

        // Files
        router.post("/files/read") { request, context -> Response in
            let body = try await request.decode(as: ReadFileRequest.self, context: context)
            let (file, size) = try services.files.openForRead(body.path)
            return Response(
                status: .ok,
                headers: [.contentType: "application/octet-stream", .cacheControl: "no-store"],
                body: services.files.body(for: file, size: size, settling: context.settling)
            )
        }
        router.post("/files/write") { request, _ -> FileEntryResponse in
            guard let path = request.uri.queryParameters.get("path") else {
                throw EnvdError.invalid("query parameter 'path' is required")
            }
            var mode: UInt32?
            if let text = request.uri.queryParameters.get("mode") {
                guard let value = UInt32(text, radix: 8), value <= 0o7777 else {
                    throw EnvdError.invalid("mode must be octal, e.g. 0644")
                }
                mode = value
            }
            let entry = try await services.files.write(
                path, user: request.uri.queryParameters.get("user"), mode: mode, body: request.body
            )
            return FileEntryResponse(entry: entry)
        }
        router.post("/files/list") { request, context -> ListDirResponse in
            let body = try await request.decode(as: ListDirRequest.self, context: context)
            return ListDirResponse(entries: try services.files.list(body.path, depth: body.depth))
        }
        router.post("/files/stat") { request, context -> FileEntryResponse in
            let body = try await request.decode(as: StatRequest.self, context: context)
            return FileEntryResponse(entry: try services.files.statEntry(body.path))
        }
        router.post("/files/mkdir") { request, context -> MakeDirResponse in
            let body = try await request.decode(as: MakeDirRequest.self, context: context)
            return MakeDirResponse(entry: try services.files.makeDirectory(body.path, user: body.user))
        }
        router.post("/files/remove") { request, context -> Response in
            let body = try await request.decode(as: RemoveRequest.self, context: context)
            try services.files.remove(body.path)
            return Response(status: .noContent)
        }
        router.post("/files/move") { request, context -> FileEntryResponse in
            let body = try await request.decode(as: MoveRequest.self, context: context)
            return FileEntryResponse(entry: try services.files.move(from: body.source, to: body.destination))
        }

        // Snapshot hooks
        router.post("/snapshot/prepare") { request, _ -> Response in
            let drop = request.uri.queryParameters.get("drop_caches").map { $0 == "1" || $0 == "true" } ?? false
            await services.snapshot.prepare(dropCaches: drop)
            return Response(status: .noContent)
        }
        router.post("/snapshot/restored") { request, context -> EnvdRestoreResponse in
            let body = try await request.decode(as: EnvdRestoreRequest.self, context: context)
            let response = try services.snapshot.restored(body)
            if let bytes = body.rootDiskBytes {
                try await services.snapshot.growRootFilesystem(toBytes: bytes, processes: services.processes)
            }
            return response
        }
    }

    /// The `{selector}` path segment, percent-decoded (tags may hold any character; callers encode them).
    static func selector(_ context: EnvdRequestContext) throws -> String {
        let raw = try context.parameters.require("selector")
        guard let decoded = raw.removingPercentEncoding else { throw EnvdError.invalid("malformed process selector") }
        return decoded
    }
}

extension EnvdHealth: ResponseEncodable {}
extension EnvdMetrics: ResponseEncodable {}
extension ProcessListResponse: ResponseEncodable {}
extension FileEntryResponse: ResponseEncodable {}
extension ListDirResponse: ResponseEncodable {}
extension MakeDirResponse: ResponseEncodable {}
extension EnvdRestoreResponse: ResponseEncodable {}
