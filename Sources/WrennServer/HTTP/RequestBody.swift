import Foundation
import Hummingbird
import NIOCore
import WrennHTTP
import WrennWire

/// Decoding JSON request bodies into wire types, with 400s that name the offending field.
extension Request {
    func decodeJSON<T: Decodable>(_ type: T.Type, context: WrennRequestContext) async throws -> T {
        var request = self
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: context.maxUploadSize)
        } catch {
            throw ServiceError(.tooLarge, "too_large", "request body too large (limit \(context.maxUploadSize) bytes)")
        }
        guard buffer.readableBytes > 0 else { throw ServiceError.invalid("a JSON request body is required") }
        do {
            return try context.requestDecoder.decode(T.self, from: Data(buffer.readableBytesView))
        } catch let error as DecodingError {
            throw ServiceError.invalid(Self.describe(error))
        }
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
        }
        switch error {
        case .keyNotFound(let key, let ctx):
            return "missing field: \(path(ctx.codingPath + [key]))"
        case .valueNotFound(_, let ctx):
            return "field \(path(ctx.codingPath)) must not be null"
        case .typeMismatch(let type, let ctx):
            let field = path(ctx.codingPath)
            return field.isEmpty ? "request body must be a JSON object" : "field \(field): expected \(Self.typeName(type))"
        case .dataCorrupted(let ctx):
            let field = path(ctx.codingPath)
            return field.isEmpty ? "malformed JSON body" : "field \(field): invalid value"
        @unknown default:
            return "invalid request body"
        }
    }

    static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "a boolean"
        case is Int.Type, is Int64.Type, is Int32.Type: "an integer"
        case is Double.Type: "a number"
        default: "a value of another type"
        }
    }
}

/// JSON answers: the edge's one helper.
typealias JSONResponse = WrennHTTP.JSONResponse
