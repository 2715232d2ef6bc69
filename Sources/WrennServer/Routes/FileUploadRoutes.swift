import AsyncAlgorithms
import AsyncHTTPClient
import Foundation
import Hummingbird
import NIOCore
import NIOFoundationCompat
import NIOPosix
import WrennWire

/// `files/write` and `files/stream/write`: the public multipart upload (`path` + `file` parts) becomes envd's raw
/// streamed write (`POST /files/write?path=…`). The file part flows through a back-pressured channel straight to the
/// agent; if a client sends `file` before `path`, the bytes are spooled to a temporary file on disk, never to memory,
/// and at most `EdgeSettings.uploadSpoolLimit` of them (413: send `path` first for larger files). The non-streaming
/// endpoint caps the file at `uploadLimit` (413 with the limit in the message).
struct FileUploadRoutes {
    let services: ControlPlaneServices
    var scope: CapsuleScope = .team
    static let uploadLimit: Int64 = 100 * 1024 * 1024
    static let maxPathBytes = 4096

    func register(on router: Router<WrennRequestContext>) {
        let c = router.group(RouterPath(scope.prefix))
        c.post("files/write") { request, context in try await upload(request, context, limit: Self.uploadLimit) }
        c.post("files/stream/write") { request, context in try await upload(request, context, limit: nil) }
    }

    func upload(_ request: Request, _ context: WrennRequestContext, limit: Int64?) async throws -> Response {
        let principal = try await scope.caller(request, context)
        let id = try context.parameters.require("id")
        let (agent, permit) = try await services.dataPlane.begin(principal, capsule: id, action: "files.write")
        defer { permit.release() }
        let spoolLimit = services.config.edge.uploadSpoolLimit
        guard let contentType = request.headers[.contentType] else { throw ServiceError.invalid("a multipart/form-data body is required") }
        if let limit, let length = request.headers[.contentLength].flatMap(Int64.init), length > limit + 64 * 1024 {
            throw Self.tooLarge(limit)
        }
        var parser: MultipartStreamParser
        do { parser = try MultipartStreamParser(contentType: contentType) } catch {
            throw ServiceError.invalid("Content-Type must be multipart/form-data with a boundary")
        }
        var path: String?
        var current: String?
        var pathBytes: [UInt8] = []
        var fileBytes: Int64 = 0
        var spool: FileSpool?
        var uploader: Uploader?
        defer { spool?.remove() }
        do {
            for try await chunk in request.body {
                for event in try parser.feed(chunk) {
                    switch event {
                    case .partStart(let name, _, _):
                        current = name
                        if name == "file" {
                            if uploader != nil || spool != nil { throw ServiceError.invalid("only one file part is allowed") }
                            if let path { uploader = try Uploader.start(agent: agent, capsuleID: id, path: path) } else { spool = try FileSpool() }
                        }
                    case .body(let bytes):
                        if current == "path" {
                            pathBytes.append(contentsOf: bytes.readableBytesView)
                            if pathBytes.count > Self.maxPathBytes { throw ServiceError.invalid("path: too long") }
                        } else if current == "file" {
                            fileBytes += Int64(bytes.readableBytes)
                            if let limit, fileBytes > limit { throw Self.tooLarge(limit) }
                            if let uploader {
                                try await uploader.send(bytes)
                            } else {
                                if fileBytes > spoolLimit { throw Self.spoolTooLarge(spoolLimit) }
                                try spool?.write(bytes)
                            }
                        }
                    case .partEnd:
                        if current == "path" { path = String(decoding: pathBytes, as: UTF8.self) }
                        current = nil
                    }
                }
            }
            try parser.finish()
        } catch let error as MultipartStreamParser.ParseError {
            uploader?.cancel()
            throw ServiceError.invalid("malformed multipart body: \(error)")
        } catch {
            uploader?.cancel()
            throw error
        }
        guard let path, !path.isEmpty else { uploader?.cancel(); throw ServiceError.invalid("missing form field: path") }
        if let uploader {
            return try await uploader.finish()
        }
        guard let spool else { throw ServiceError.invalid("missing form field: file") }
        // `file` came before `path`: send the spooled copy now.
        let late = try Uploader.start(agent: agent, capsuleID: id, path: path)
        for try await chunk in try spool.chunks() { try await late.send(chunk) }
        return try await late.finish()
    }

    static func spoolTooLarge(_ limit: Int64) -> ServiceError {
        ServiceError(.tooLarge, "too_large",
                     "a file part sent before the path part may be at most \(limit) bytes; send the path part first for larger files")
    }

    static func tooLarge(_ limit: Int64) -> ServiceError {
        ServiceError(.tooLarge, "too_large",
                     "file exceeds the \(limit / (1024 * 1024)) MiB limit of files/write; use files/stream/write for larger files")
    }

    /// One streamed write to envd, fed through a back-pressured channel.
    final class Uploader: Sendable {
        let task: Task<Response, any Error>

        static func start(agent: AgentClient, capsuleID: String, path: String) throws -> Uploader {
            guard let escaped = path.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed.subtracting(CharacterSet(charactersIn: "&=+#")))
            else { throw ServiceError.invalid("path: not encodable") }
            let channel = AsyncThrowingChannel<ByteBuffer, any Error>()
            let task = Task<Response, any Error> {
                let response = try await agent.envd(.POST, capsule: capsuleID, "/files/write?path=\(escaped)",
                                                    contentType: "application/octet-stream", body: .stream(channel, length: .unknown))
                let body = try await EnvdAnswer.collect(response.body, limit: 1 << 20, timeout: .seconds(120))
                guard (200..<300).contains(response.status.code) else {
                    throw AgentClient.mapError(status: response.status.code, body: Data(buffer: body), path: "files/write")
                }
                return Response(status: .noContent)
            }
            return Uploader(task: task, channel: channel)
        }

        private init(task: Task<Response, any Error>, channel: AsyncThrowingChannel<ByteBuffer, any Error>) {
            self.task = task
            self.channelStorage = channel
        }
        private let channelStorage: AsyncThrowingChannel<ByteBuffer, any Error>

        func send(_ bytes: ByteBuffer) async throws {
            await channelStorage.send(bytes)
            if task.isCancelled { throw CancellationError() }
        }

        func finish() async throws -> Response {
            channelStorage.finish()
            return try await task.value
        }

        func cancel() {
            channelStorage.fail(CancellationError())
            task.cancel()
        }
    }
}

/// A temporary file for upload bytes that arrived before their destination path.
final class FileSpool {
    let url: URL
    private let handle: FileHandle

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("wrenn-upload-\(UUID().uuidString)")
        guard FileManager.default.createFile(atPath: url.path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
            throw ServiceError(.internalError, "internal_error", "cannot create a temporary upload file")
        }
        handle = try FileHandle(forWritingTo: url)
    }

    func write(_ bytes: ByteBuffer) throws { try handle.write(contentsOf: Data(buffer: bytes)) }

    /// The spooled bytes in 64 KiB chunks.
    func chunks() throws -> AsyncThrowingStream<ByteBuffer, any Error> {
        try handle.close()
        return try FileChunks.stream(url)
    }

    func remove() { try? FileManager.default.removeItem(at: url) }
}
