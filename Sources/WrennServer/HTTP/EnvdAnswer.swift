import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOFoundationCompat
import WrennHTTP
import WrennWire

/// How the control plane answers with what a capsule's envd said. The guest controls every byte envd sends, so
/// nothing of it is passed on as it came: the control plane decides each answer's status, type and headers itself.
/// - JSON operations: the body (bounded in size and time) must be JSON, and is sent as `application/json`;
/// - file reads: `application/octet-stream` + `Content-Disposition: attachment`, streamed;
/// - failures: envd's (or the agent's) error envelope, re-encoded, with a status from the contract's set; anything
///   else is 502 `agent_error`.
/// Every API answer also carries `nosniff` and a CSP that allows nothing (`SecurityHeadersMiddleware`).
enum EnvdAnswer {
    /// The largest JSON answers taken from envd: a foreground exec keeps up to 16 MiB per stream, which JSON escaping
    /// can grow several times over; a listing holds up to 100 000 entries; the rest are small.
    static let execLimit = 160 << 20
    static let listLimit = 64 << 20
    static let smallLimit = 16 << 20
    /// Statuses an envelope from envd or the agent may keep.
    static let errorStatuses: Set<Int> = [400, 403, 404, 409, 413, 415, 426, 429, 500, 502, 503, 507]

    /// A JSON operation's answer.
    static func json(_ response: HTTPClientResponse, limit: Int, timeout: Duration) async throws -> Response {
        let code = Int(response.status.code)
        guard (200..<300).contains(code) else { return try await failure(response, timeout: timeout) }
        if code == 204 { return Response(status: .noContent) }
        let body = try await collect(response.body, limit: limit, timeout: timeout)
        guard (try? JSONSerialization.jsonObject(with: Data(buffer: body))) != nil else {
            throw invalid("the capsule answered with something that is not JSON")
        }
        return JSONResponse.bytes(body.readableBytesView, status: HTTPResponse.Status(code: [201, 202].contains(code) ? code : 200))
    }

    /// An operation that answers `204` on success.
    static func noContent(_ response: HTTPClientResponse, timeout: Duration) async throws -> Response {
        guard (200..<300).contains(Int(response.status.code)) else { return try await failure(response, timeout: timeout) }
        return Response(status: .noContent)
    }

    /// File bytes, streamed as a download that no browser renders.
    /// `permit` is released once the last byte went out (or the download failed).
    static func file(_ response: HTTPClientResponse, holding permit: Permit, timeout: Duration) async throws -> Response {
        guard response.status.code == 200 else {
            defer { permit.release() }
            return try await failure(response, timeout: timeout)
        }
        let length = response.headers.first(name: "content-length").flatMap { Int($0) }.flatMap { $0 >= 0 ? $0 : nil }
        return Response(status: .ok,
                        headers: [.contentType: "application/octet-stream", .contentDisposition: "attachment"],
                        body: ResponseBody(contentLength: length) { writer in
                            defer { permit.release() }
                            try await writer.write(response.body)
                            try await writer.finish(nil)
                        })
    }

    /// envd's or the agent's error envelope with its status, or 502 when it is not one.
    static func failure(_ response: HTTPClientResponse, timeout: Duration) async throws -> Response {
        let code = Int(response.status.code)
        let body = try? await collect(response.body, limit: 64 << 10, timeout: timeout)
        guard errorStatuses.contains(code), let body,
              let envelope = try? WireCoding.makeDecoder().decode(ErrorEnvelope.self, from: Data(buffer: body)) else {
            throw invalid("the capsule answered HTTP \(code) without an error envelope")
        }
        return JSONResponse.envelope(status: HTTPResponse.Status(code: code), code: envelope.error.code, message: envelope.error.message)
    }

    /// At most `limit` bytes of `body`, within `timeout`.
    static func collect(_ body: HTTPClientResponse.Body, limit: Int, timeout: Duration) async throws -> ByteBuffer {
        try await withThrowingTaskGroup(of: ByteBuffer?.self) { group in
            group.addTask {
                do { return try await body.collect(upTo: limit) } catch is NIOTooManyBytesError {
                    throw invalid("the capsule's answer is larger than \(limit) bytes")
                }
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let buffer = first else {
                throw invalid("the capsule did not finish its answer within \(timeout)")
            }
            return buffer
        }
    }

    static func invalid(_ message: String) -> ServiceError { ServiceError(.badGateway, "agent_error", message) }
}
