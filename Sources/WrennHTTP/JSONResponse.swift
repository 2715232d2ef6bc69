import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import WrennWire

/// JSON answers of every Wrenn process: the wire encoder (sorted keys, RFC 3339 dates), `application/json;
/// charset=utf-8`, and the status the contract names.
public enum JSONResponse {
    public static let contentType = "application/json; charset=utf-8"

    /// `value` as JSON with `status`.
    public static func make<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        try bytes(WireCoding.makeEncoder().encode(value), status: status)
    }

    /// `204 No Content`.
    public static func noContent() -> Response { Response(status: .noContent) }

    /// Bytes that are already JSON.
    public static func bytes(_ data: some Sequence<UInt8>, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = contentType
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// The error envelope `{"error":{"code","message"}}`.
    public static func envelope(status: HTTPResponse.Status, code: String, message: String, headers: HTTPFields = [:]) -> Response {
        bytes(envelopeBytes(code: code, message: message), status: status, headers: headers)
    }

    /// The envelope's bytes.
    public static func envelopeBytes(code: String, message: String) -> Data {
        (try? WireCoding.makeEncoder().encode(ErrorEnvelope(code: code, message: message))) ?? Data()
    }
}
